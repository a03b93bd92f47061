-- STAND-IN for the lead's migration 043 (issue 20), the shape the brief gave, so that migration
-- 045 (Kamailio's views over `nodes`) applies on this branch: drop this file in favour of the
-- lead's 043 on merge.
CREATE TABLE nodes (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9-]{0,31}$'),
    ari_url       text NOT NULL,
    ami_url       text NOT NULL,
    sip_uri       text NOT NULL,
    draining      boolean NOT NULL DEFAULT false,
    serving_until timestamptz,
    added_at      timestamptz NOT NULL DEFAULT now());
