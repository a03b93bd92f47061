-- Supervision (issue 18): a supervisor listens to, whispers into or barges into a live talk.
--
-- agents.supervisor: who may (`supervisor = true` in provisioning, `hotline agent --supervisor`).
-- supervisions: one row per request the daemon took (hotline.engine.supervision), written by the
-- daemon that runs the talk; the CLI that asked waits on its `request` id.
--   outcome  ringing (the supervisor's phone rings), supervising (answered: listening,
--            whispering or barged in), ended (the supervisor hung up or the talk ended),
--            unanswered (the phone was not answered, or the talk ended while it rang), refused
--            (no live talk here, the supervisor busy or supervising already, ...: `detail` says)
--   hop_id   the customer's leg whose talk is supervised; agent_id: the agent talking with them
--   started_at / ended_at: when the supervisor's leg was in (listen, whisper: the snoop bridged
--            with it; barge: in the talk's bridge) and when it left
CREATE TABLE supervisions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request        text NOT NULL UNIQUE,
    case_id        bigint NOT NULL REFERENCES cases (id),
    hop_id         bigint REFERENCES hops (id),
    agent_id       bigint REFERENCES agents (id) ON DELETE SET NULL,
    supervisor_id  bigint REFERENCES agents (id) ON DELETE SET NULL,
    supervisor     text NOT NULL,
    mode           text NOT NULL CHECK (mode IN ('listen', 'whisper', 'barge')),
    asked_by       text NOT NULL CHECK (asked_by <> ''),
    node           text NOT NULL,
    channel_id     text,
    outcome        text NOT NULL CHECK (outcome IN ('ringing', 'supervising', 'ended', 'unanswered',
                                                    'refused')),
    detail         text NOT NULL DEFAULT '',
    asked_at       timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    ended_at       timestamptz,
    CHECK (started_at IS NULL OR started_at >= asked_at),
    CHECK (ended_at IS NULL OR ended_at >= coalesce(started_at, asked_at))
);
CREATE INDEX supervisions_case_idx ON supervisions (case_id);

ALTER TABLE agents ADD COLUMN supervisor boolean NOT NULL DEFAULT false;
