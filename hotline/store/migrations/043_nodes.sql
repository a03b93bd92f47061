-- The Asterisk nodes one active daemon serves (issue 20: several nodes behind Kamailio).
-- Provisioned like the rest (`[nodes.NAME]` in the file, `hotline node add|set|remove`); no rows:
-- one node, the settings' ari_url/ami_url under the `node` setting's name, as before. URLs carry
-- no secret: every node is rendered by the same `hotline apply`, so the ARI and AMI users of the
-- settings' ari_url/ami_url log in to each. hops.node names the node a leg lives on.
CREATE TABLE nodes (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    ari_url       text NOT NULL CHECK (ari_url ~ '^https?://[^/@\s]+$'),
    ami_url       text NOT NULL CHECK (ami_url ~ '^ami://[^/@\s]+$'),
    sip_uri       text NOT NULL CHECK (sip_uri ~ '^sips?:[^@\s]+$'),
    -- operations, not provisioning (`hotline node drain|undrain`; a file never changes it): the
    -- node takes no new call, its live calls go on to their end
    draining      boolean NOT NULL DEFAULT false,
    -- the active daemon's word, renewed every few seconds: it serves this node's calls until then
    -- (Kamailio's dispatcher offers new calls only to such nodes: a lapsed one takes none)
    serving_until timestamptz,
    added_at      timestamptz NOT NULL DEFAULT now()
);
