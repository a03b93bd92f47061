-- Outbound trunks: the PJSIP endpoint (a site's own, in pjsip_local.conf) calls to outside
-- numbers go through, the E.164 prefixes a number must start with to be dialled there, and the
-- caller id presented (one of the hotlines' numbers, checked by provisioning). Retired, not
-- deleted, like every provisioned object, so what was dialled through it keeps its name.
CREATE TABLE trunks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        slug NOT NULL UNIQUE,
    endpoint    text NOT NULL CHECK (endpoint ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    caller_id   text NOT NULL CHECK (caller_id ~ '^\+[1-9][0-9]{6,14}$'),
    allow       text[] NOT NULL CHECK (cardinality(allow) > 0
                                       AND array_to_string(allow, ',') ~ '^\+[1-9][0-9]*(,\+[1-9][0-9]*)*$'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz
);
