-- Agents' SIP passwords are no longer kept: only the HA1 PJSIP checks them against
-- (md5_cred = md5(endpoint:realm:password), realm 'asterisk': hotline.provision.sip_auth), which
-- also checks the agent page's login. Existing passwords are turned into their HA1 here.
ALTER TABLE agents ADD COLUMN password_ha1 text CHECK (password_ha1 ~ '^[0-9a-f]{32}$');
UPDATE agents SET password_ha1 = md5(endpoint || ':asterisk:' || password) WHERE password IS NOT NULL;
ALTER TABLE agents DROP COLUMN password;
