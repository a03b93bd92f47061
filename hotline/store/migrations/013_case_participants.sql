-- A conference: an agent brings a second agent or a supervisor into the case's bridge (SFU: all
-- see each other). One row per invited party's leg: who, invited by whom, when it joined and left.
CREATE TABLE case_participants (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id      bigint NOT NULL REFERENCES cases (id),
    agent_id     bigint REFERENCES agents (id) ON DELETE SET NULL,
    node         text NOT NULL,
    channel_id   text NOT NULL,
    invited_by   text NOT NULL CHECK (invited_by <> ''),  -- cli, agent:NAME
    joined_at    timestamptz NOT NULL DEFAULT now(),
    left_at      timestamptz,
    UNIQUE (node, channel_id),
    CHECK (left_at IS NULL OR left_at >= joined_at)
);
CREATE INDEX case_participants_case_idx ON case_participants (case_id);
