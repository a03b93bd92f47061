-- Video callers and the switch from a phone call to video (issue 6).

-- A queue that prefers video agents rings only video-capable agents for a video caller during
-- its first video_fallback_s seconds of waiting, then every agent (video-capable ones first).
-- NULL: never falls back (video callers wait for a video agent).
ALTER TABLE queues ADD COLUMN video_fallback_s seconds DEFAULT 30 CHECK (video_fallback_s <= 3600);

-- A switch: the customer of a live call is sent a link; the browser's video leg carrying its
-- token joins the case's bridge next to the same agent, and the phone leg is released. The
-- token itself is never stored, only its SHA-256: a copy of the database opens no call. Single
-- use (used_at), short-lived (expires_at), bound to one case and one leg (from_hop_id).
CREATE TABLE switches (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       bigint NOT NULL REFERENCES cases (id),
    from_hop_id   bigint NOT NULL REFERENCES hops (id),
    to_hop_id     bigint UNIQUE REFERENCES hops (id),
    token_sha256  bytea NOT NULL UNIQUE CHECK (length(token_sha256) = 32),
    requested_by  text NOT NULL CHECK (requested_by <> ''),  -- cli, agent:NAME, caller
    issued_at     timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,
    used_at       timestamptz,
    CHECK (expires_at > issued_at),
    CHECK ((used_at IS NULL) = (to_hop_id IS NULL)),
    CHECK (used_at IS NULL OR used_at >= issued_at)
);
CREATE INDEX switches_case_idx ON switches (case_id);
