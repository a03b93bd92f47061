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

-- Queued callbacks: a waiting caller asked to be called back instead of waiting. The request keeps
-- the caller's place (joined_at, the time they joined the queue); due_at is when it may be placed
-- at the earliest (the hotline's next opening, or a retry's interval); expires_at drops it.
-- A daemon placing one holds it (status 'placing', placed_by its run, a lease it renews): a claim
-- takes pending rows only, with FOR UPDATE SKIP LOCKED, so two daemons never place the same one,
-- and a lease that ran out (the daemon died) puts it back.
CREATE TABLE callbacks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id       bigint NOT NULL REFERENCES cases (id),
    hop_id        bigint REFERENCES hops (id),        -- the leg that asked
    queue_id      bigint NOT NULL REFERENCES queues (id),
    number        text NOT NULL CHECK (number ~ '^\+[1-9][0-9]{6,14}$'),
    joined_at     timestamptz NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT now(),
    due_at        timestamptz NOT NULL,
    expires_at    timestamptz,
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    status        text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'placing', 'answered', 'failed', 'expired', 'cancelled')),
    placed_by     text,
    lease_until   timestamptz,
    ended_at      timestamptz,
    detail        text NOT NULL DEFAULT '',
    CHECK ((status = 'placing') = (placed_by IS NOT NULL AND lease_until IS NOT NULL)),
    CHECK ((status IN ('answered', 'failed', 'expired', 'cancelled')) = (ended_at IS NOT NULL))
);
-- the line of callbacks per queue, oldest join first
CREATE INDEX callbacks_pending_idx ON callbacks (queue_id, joined_at) WHERE status = 'pending';
-- a caller pressing the key again keeps the one request
CREATE UNIQUE INDEX callbacks_one_open_per_case ON callbacks (case_id, queue_id)
    WHERE status IN ('pending', 'placing');
