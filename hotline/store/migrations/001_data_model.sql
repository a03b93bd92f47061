-- The whole data model of shared/DESIGN.md: provisioning, contacts (cases and hops), queue events,
-- agent sessions. Later migrations add columns and views, not redesigns.

-- Names an engineer types on the command line and sees in Asterisk config: lower-case slugs.
CREATE DOMAIN slug AS text
    CHECK (VALUE ~ '^[a-z0-9][a-z0-9_-]{0,62}$');

CREATE DOMAIN seconds AS integer
    CHECK (VALUE >= 0);

---------------------------------------------------------------------------------------------------
-- Provisioning
---------------------------------------------------------------------------------------------------

CREATE TABLE ivr_menus (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name            slug NOT NULL UNIQUE,
    prompt          text NOT NULL,                 -- Asterisk sound name or file path
    invalid_prompt  text,
    timeout_prompt  text,
    timeout_s       seconds NOT NULL DEFAULT 5 CHECK (timeout_s > 0),
    retries         integer NOT NULL DEFAULT 3 CHECK (retries BETWEEN 0 AND 20),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE queues (
    id                     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                   slug NOT NULL UNIQUE,
    strategy               text NOT NULL DEFAULT 'ringall'
        CHECK (strategy IN ('ringall', 'leastrecent', 'fewestcalls', 'random', 'rrmemory', 'linear')),
    ring_timeout_s         seconds NOT NULL DEFAULT 15 CHECK (ring_timeout_s > 0),
    retry_s                seconds NOT NULL DEFAULT 5,
    wrapup_s               seconds NOT NULL DEFAULT 0,
    max_wait_s             seconds CHECK (max_wait_s > 0),          -- NULL: wait for ever
    max_len                integer CHECK (max_len > 0),             -- NULL: no limit
    join_empty             boolean NOT NULL DEFAULT true,           -- join with no agent logged in
    announce_period_s      seconds CHECK (announce_period_s > 0),   -- position/hold time; NULL: never
    music_class            text NOT NULL DEFAULT 'default',
    service_level_s        seconds NOT NULL DEFAULT 20 CHECK (service_level_s > 0),
    prefer_video_agents    boolean NOT NULL DEFAULT false,
    -- Where a caller goes on max wait / max length: exactly the target its action needs.
    overflow_action        text NOT NULL DEFAULT 'hangup'
        CHECK (overflow_action IN ('hangup', 'queue', 'hotline', 'menu')),
    overflow_queue_id      bigint,
    overflow_hotline_id    bigint,
    overflow_menu_id       bigint REFERENCES ivr_menus (id) DEFERRABLE INITIALLY DEFERRED,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((overflow_action = 'queue') = (overflow_queue_id IS NOT NULL)),
    CHECK ((overflow_action = 'hotline') = (overflow_hotline_id IS NOT NULL)),
    CHECK ((overflow_action = 'menu') = (overflow_menu_id IS NOT NULL)),
    CHECK (overflow_queue_id IS DISTINCT FROM id)
);

ALTER TABLE queues
    ADD FOREIGN KEY (overflow_queue_id) REFERENCES queues (id) DEFERRABLE INITIALLY DEFERRED;

CREATE TABLE hotlines (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                slug NOT NULL UNIQUE,
    description         text NOT NULL DEFAULT '',
    time_zone           text NOT NULL DEFAULT 'Europe/Moscow',   -- IANA name, checked by the app
    -- Entry route: exactly one of an IVR menu or a queue.
    entry_menu_id       bigint REFERENCES ivr_menus (id) DEFERRABLE INITIALLY DEFERRED,
    entry_queue_id      bigint REFERENCES queues (id) DEFERRABLE INITIALLY DEFERRED,
    -- Outside business hours.
    closed_action       text NOT NULL DEFAULT 'hangup'
        CHECK (closed_action IN ('hangup', 'hotline', 'callback')),
    closed_prompt       text,
    closed_hotline_id   bigint,
    region_routing      boolean NOT NULL DEFAULT false,           -- 8-800: route by caller region
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK (num_nonnulls(entry_menu_id, entry_queue_id) = 1),
    CHECK ((closed_action = 'hotline') = (closed_hotline_id IS NOT NULL)),
    CHECK (closed_hotline_id IS DISTINCT FROM id)
);

ALTER TABLE hotlines
    ADD FOREIGN KEY (closed_hotline_id) REFERENCES hotlines (id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE queues
    ADD FOREIGN KEY (overflow_hotline_id) REFERENCES hotlines (id) DEFERRABLE INITIALLY DEFERRED;

-- Opening hours per ISO weekday (1 = Monday); a hotline with no rows is always open.
CREATE TABLE hotline_hours (
    hotline_id  bigint NOT NULL REFERENCES hotlines (id) ON DELETE CASCADE,
    weekday     smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    opens       time NOT NULL,
    closes      time NOT NULL,
    CHECK (opens < closes),
    PRIMARY KEY (hotline_id, weekday, opens)
);

-- Dated exceptions: closed all day (opens IS NULL) or special hours.
CREATE TABLE hotline_holidays (
    hotline_id  bigint NOT NULL REFERENCES hotlines (id) ON DELETE CASCADE,
    day         date NOT NULL,
    opens       time,
    closes      time,
    note        text NOT NULL DEFAULT '',
    CHECK ((opens IS NULL) = (closes IS NULL)),
    CHECK (opens IS NULL OR opens < closes),
    PRIMARY KEY (hotline_id, day)
);

-- 8-800 routing by caller: a number prefix (E.164, '+7913') or a geocoded region name.
CREATE TABLE hotline_region_routes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hotline_id  bigint NOT NULL REFERENCES hotlines (id) ON DELETE CASCADE,
    match_kind  text NOT NULL CHECK (match_kind IN ('prefix', 'region')),
    match       text NOT NULL CHECK (match <> ''),
    queue_id    bigint NOT NULL REFERENCES queues (id) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (hotline_id, match_kind, match)
);

-- What callers dial: an E.164 number (city, 8-800) or a SIP/WebRTC address (video).
CREATE TABLE numbers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    number      text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('city', 'tollfree', 'video')),
    hotline_id  bigint NOT NULL REFERENCES hotlines (id) DEFERRABLE INITIALLY DEFERRED,
    line_limit  integer CHECK (line_limit > 0),                  -- NULL: unlimited
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (kind = 'video' OR number ~ '^\+[1-9][0-9]{6,14}$'),
    CHECK (kind <> 'video' OR number ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$')
);
CREATE INDEX numbers_hotline_idx ON numbers (hotline_id);

CREATE TABLE agents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name          slug NOT NULL UNIQUE,
    display_name  text NOT NULL DEFAULT '',
    endpoint      text NOT NULL UNIQUE CHECK (endpoint ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$'),
    password      text,                                 -- for the PJSIP auth the project renders
    audio         boolean NOT NULL DEFAULT true,
    video         boolean NOT NULL DEFAULT false,
    webrtc        boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (audio OR video)
);

CREATE TABLE queue_members (
    queue_id   bigint NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    agent_id   bigint NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    penalty    integer NOT NULL DEFAULT 0 CHECK (penalty >= 0),
    paused     boolean NOT NULL DEFAULT false,              -- per-queue pause, as app_queue
    PRIMARY KEY (queue_id, agent_id)
);
CREATE INDEX queue_members_agent_idx ON queue_members (agent_id);

CREATE TABLE ivr_options (
    menu_id            bigint NOT NULL REFERENCES ivr_menus (id) ON DELETE CASCADE,
    digit              text NOT NULL CHECK (digit ~ '^[0-9*#]$'),
    action             text NOT NULL
        CHECK (action IN ('menu', 'queue', 'hotline', 'hangup', 'video', 'repeat', 'callback')),
    target_menu_id     bigint REFERENCES ivr_menus (id) DEFERRABLE INITIALLY DEFERRED,
    target_queue_id    bigint REFERENCES queues (id) DEFERRABLE INITIALLY DEFERRED,
    target_hotline_id  bigint REFERENCES hotlines (id) DEFERRABLE INITIALLY DEFERRED,
    prompt             text,                                 -- said before the action, optional
    PRIMARY KEY (menu_id, digit),
    CHECK ((action = 'menu') = (target_menu_id IS NOT NULL)),
    CHECK ((action = 'queue') = (target_queue_id IS NOT NULL)),
    CHECK ((action = 'hotline') = (target_hotline_id IS NOT NULL))
);

ALTER TABLE ivr_menus ADD COLUMN hotline_id bigint REFERENCES hotlines (id) ON DELETE SET NULL;

-- Agent state that outlives the daemon: login sessions and pauses, as intervals.
CREATE TABLE agent_sessions (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id       bigint NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    logged_in_at   timestamptz NOT NULL DEFAULT now(),
    logged_out_at  timestamptz,
    CHECK (logged_out_at IS NULL OR logged_out_at >= logged_in_at)
);
CREATE UNIQUE INDEX agent_sessions_one_open ON agent_sessions (agent_id) WHERE logged_out_at IS NULL;
CREATE INDEX agent_sessions_time_idx ON agent_sessions (logged_in_at);

CREATE TABLE agent_pauses (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id    bigint NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    reason      text NOT NULL DEFAULT '',
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE UNIQUE INDEX agent_pauses_one_open ON agent_pauses (agent_id) WHERE ended_at IS NULL;
CREATE INDEX agent_pauses_time_idx ON agent_pauses (started_at);

---------------------------------------------------------------------------------------------------
-- Contacts: one case per customer contact, one hop per channel leg
---------------------------------------------------------------------------------------------------

CREATE TABLE cases (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_key   text NOT NULL,                  -- normalised caller number or web identity
    status         text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    opened_at      timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    last_agent_id  bigint REFERENCES agents (id) ON DELETE SET NULL,
    CHECK ((status = 'closed') = (closed_at IS NOT NULL))
);
CREATE INDEX cases_customer_idx ON cases (customer_key, opened_at DESC);
CREATE INDEX cases_open_idx ON cases (opened_at) WHERE status = 'open';

CREATE TABLE hops (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id            bigint NOT NULL REFERENCES cases (id),
    seq                integer NOT NULL CHECK (seq >= 1),
    node               text NOT NULL,               -- the Asterisk node the leg lives on
    channel_id         text NOT NULL,               -- ARI channel id (Asterisk uniqueid)
    channel_name       text NOT NULL DEFAULT '',
    channel_kind       text NOT NULL CHECK (channel_kind IN ('pstn', 'sip', 'webrtc')),
    media              text NOT NULL DEFAULT 'audio' CHECK (media IN ('audio', 'video')),
    dialled            text NOT NULL,               -- as Asterisk gave it (the Stasis argument)
    dialled_e164       text,                        -- normalised, NULL for a video address
    number_id          bigint REFERENCES numbers (id) ON DELETE SET NULL,
    line               integer CHECK (line >= 1),   -- which line of the number this leg holds
    caller_num         text NOT NULL DEFAULT '',
    caller_name        text NOT NULL DEFAULT '',
    hotline_id         bigint REFERENCES hotlines (id) ON DELETE SET NULL,
    ivr_path           text NOT NULL DEFAULT '',    -- digits pressed, in order
    queue_id           bigint REFERENCES queues (id) ON DELETE SET NULL,
    agent_id           bigint REFERENCES agents (id) ON DELETE SET NULL,
    entered_at         timestamptz NOT NULL DEFAULT now(),
    queued_at          timestamptz,
    answered_at        timestamptz,
    ended_at           timestamptz,
    end_reason         text CHECK (end_reason IN ('completed', 'abandoned', 'busy', 'overflow',
                                                  'transferred', 'switched', 'failed', 'closed')),
    hangup_cause       integer,                     -- Q.850 cause from Asterisk
    hangup_cause_text  text,
    UNIQUE (case_id, seq),
    UNIQUE (node, channel_id),
    CHECK ((ended_at IS NULL) = (end_reason IS NULL)),
    CHECK (ended_at IS NULL OR ended_at >= entered_at)
);
CREATE INDEX hops_case_idx ON hops (case_id);
CREATE INDEX hops_open_idx ON hops (node) WHERE ended_at IS NULL;
CREATE INDEX hops_entered_idx ON hops (entered_at);
CREATE INDEX hops_queue_idx ON hops (queue_id, queued_at);
CREATE INDEX hops_agent_idx ON hops (agent_id, answered_at);
CREATE INDEX hops_hotline_idx ON hops (hotline_id, entered_at);
-- A line of a number is held by at most one live leg: line limits hold across daemon restarts
-- and several daemons, with no in-memory counter to lose.
CREATE UNIQUE INDEX hops_line_held ON hops (number_id, line) WHERE ended_at IS NULL AND line IS NOT NULL;

---------------------------------------------------------------------------------------------------
-- Queue events: append-only, like app_queue's queue_log; every statistic is recomputable from it
---------------------------------------------------------------------------------------------------

CREATE TABLE queue_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    queue_id    bigint NOT NULL REFERENCES queues (id),
    case_id     bigint NOT NULL REFERENCES cases (id),
    hop_id      bigint NOT NULL REFERENCES hops (id),
    agent_id    bigint REFERENCES agents (id),
    event       text NOT NULL CHECK (event IN ('join', 'ring', 'ring_noanswer', 'answer', 'abandon',
                                               'overflow', 'exit_key', 'complete', 'transfer')),
    position    integer CHECK (position >= 1),   -- join, abandon: the caller's place in line
    wait_ms     integer CHECK (wait_ms >= 0),    -- answer, abandon, overflow, exit_key
    ring_ms     integer CHECK (ring_ms >= 0),    -- ring_noanswer, answer
    talk_ms     integer CHECK (talk_ms >= 0),    -- complete
    detail      text NOT NULL DEFAULT ''         -- overflow target, key pressed, who hung up
);
CREATE INDEX queue_events_queue_time_idx ON queue_events (queue_id, at);
CREATE INDEX queue_events_agent_time_idx ON queue_events (agent_id, at) WHERE agent_id IS NOT NULL;
CREATE INDEX queue_events_hop_idx ON queue_events (hop_id);
CREATE INDEX queue_events_case_idx ON queue_events (case_id);
