-- An endpoint belongs to one live agent: a retired agent's endpoint may be given to a new agent,
-- and two agents may swap endpoints in one provisioning transaction (checked at commit).
ALTER TABLE agents DROP CONSTRAINT agents_endpoint_key;
ALTER TABLE agents ADD CONSTRAINT agents_live_endpoint_key
    EXCLUDE USING btree (endpoint WITH =) WHERE (retired_at IS NULL) DEFERRABLE INITIALLY DEFERRED;
