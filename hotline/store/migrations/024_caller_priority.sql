-- Caller priority (issue 17): a dialled number, an 8-800 region route and a menu key can each set
-- a caller's priority, 0..10 like app_queue's QUEUE_PRIO: a queue serves higher priority first,
-- equal priority longest-waiting first. The most specific wins: a menu key's over a region
-- route's over the number's; a route or key without one (NULL) leaves the caller's as it was.
--   numbers.priority                 every caller of the number starts with it (default 0)
--   hotline_region_routes.priority   NULL: the number's stands
--   ivr_options.priority             NULL: what the caller had stands
--   queue_events.priority            on a join: the priority the caller joined that queue with
--   hops.priority                    the priority of the hop's last join (NULL: never queued)
-- record_call_events() is migration 023's with the join's priority written to both (the only
-- change: the 'event' branch).
-- queue_waiting: the callers waiting now, in the order they are served, one row each; the daemon
-- publishes it with queue_live (same transaction), `hotline stats live` lists it.
ALTER TABLE numbers ADD COLUMN priority smallint NOT NULL DEFAULT 0 CHECK (priority BETWEEN 0 AND 10);
ALTER TABLE hotline_region_routes ADD COLUMN priority smallint CHECK (priority BETWEEN 0 AND 10);
ALTER TABLE ivr_options ADD COLUMN priority smallint CHECK (priority BETWEEN 0 AND 10);
ALTER TABLE queue_events ADD COLUMN priority smallint CHECK (priority BETWEEN 0 AND 10);
ALTER TABLE hops ADD COLUMN priority smallint CHECK (priority BETWEEN 0 AND 10);

CREATE TABLE queue_waiting (
    queue_id       bigint NOT NULL REFERENCES queues (id) ON DELETE CASCADE,
    position       integer NOT NULL CHECK (position >= 1),
    node           text NOT NULL,
    channel_id     text NOT NULL,
    priority       smallint NOT NULL CHECK (priority BETWEEN 0 AND 10),
    waiting_since  timestamptz NOT NULL,
    ringing        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (queue_id, position)
);

CREATE OR REPLACE FUNCTION record_call_events(batch jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    happened timestamptz;
    the_hop bigint;
    case_of bigint;
    closed integer := 0;
BEGIN
    FOR r IN SELECT value FROM jsonb_array_elements(batch) LOOP
        happened := coalesce((r->>'at')::timestamptz, now());
        the_hop := (r->>'hop')::bigint;
        case_of := (r->>'case')::bigint;
        IF the_hop IS NULL AND r->>'k' IN ('event', 'digit', 'close', 'talk', 'transfer', 'media') THEN
            SELECT id, case_id INTO the_hop, case_of FROM hops
             WHERE node = r->>'node' AND channel_id = r->>'channel_id';
        END IF;
        CASE r->>'k'
        WHEN 'event' THEN
            INSERT INTO queue_events (at, queue_id, case_id, hop_id, agent_id, event, position, wait_ms,
                                      ring_ms, talk_ms, detail, priority)
            VALUES (happened, (r->>'queue')::bigint, case_of, the_hop, (r->>'agent')::bigint,
                    r->>'event', (r->>'position')::integer, (r->>'wait_ms')::integer,
                    (r->>'ring_ms')::integer, (r->>'talk_ms')::integer, coalesce(r->>'detail', ''),
                    (r->>'priority')::smallint);
            IF r->>'event' = 'join' THEN
                -- the priority the caller waits with (migration 024): its last join's
                UPDATE hops SET queue_id = (r->>'queue')::bigint, queued_at = happened,
                                priority = coalesce((r->>'priority')::smallint, priority)
                 WHERE id = the_hop;
            ELSIF r->>'event' = 'answer' THEN
                -- answered_at stays the first answer (a transfer's next agent answers again)
                UPDATE hops SET agent_id = (r->>'agent')::bigint, answered_at = coalesce(answered_at, happened)
                 WHERE id = the_hop;
                UPDATE cases SET last_agent_id = (r->>'agent')::bigint WHERE id = case_of;
            END IF;
        WHEN 'digit' THEN
            UPDATE hops SET ivr_path = ivr_path || (r->>'digit') WHERE id = the_hop;
        WHEN 'close' THEN
            -- The end time is the daemon's clock, entered_at Asterisk's: greatest() keeps a skew
            -- between them from breaking the hop's check and losing its end.
            UPDATE hops SET ended_at = greatest(happened, entered_at), end_reason = r->>'reason',
                            hangup_cause = (r->>'cause')::integer, hangup_cause_text = r->>'cause_text'
             WHERE id = the_hop AND ended_at IS NULL
            RETURNING case_id INTO case_of;
            IF FOUND THEN
                closed := closed + 1;
                UPDATE cases SET status = 'closed', closed_at = greatest(happened, opened_at)
                 WHERE id = case_of AND status = 'open'
                   AND NOT EXISTS (SELECT 1 FROM hops WHERE case_id = case_of AND ended_at IS NULL);
            END IF;
        WHEN 'talk' THEN
            UPDATE hops SET queue_id = (r->>'queue')::bigint, agent_id = (r->>'agent')::bigint,
                            answered_at = happened
             WHERE id = the_hop;
        WHEN 'refused' THEN
            -- Once per channel: a record retried alone (after its batch was refused) finds its hop.
            IF NOT EXISTS (SELECT 1 FROM hops WHERE node = r->>'node' AND channel_id = r->>'channel_id') THEN
                INSERT INTO cases (customer_key, opened_at, status, closed_at)
                VALUES (r->>'key', coalesce((r->>'entered_at')::timestamptz, happened), 'closed',
                        greatest(happened, coalesce((r->>'entered_at')::timestamptz, happened)))
                RETURNING id INTO case_of;
                INSERT INTO hops (case_id, seq, node, channel_id, channel_name, channel_kind, media, dialled,
                                  dialled_e164, caller_num, caller_name, entered_at, number_id, hotline_id,
                                  ended_at, end_reason, hangup_cause, hangup_cause_text)
                VALUES (case_of, 1, r->>'node', r->>'channel_id', r->>'channel_name', r->>'channel_kind',
                        r->>'media', r->>'dialled', r->>'dialled_e164', r->>'caller_num', r->>'caller_name',
                        coalesce((r->>'entered_at')::timestamptz, happened), (r->>'number')::bigint,
                        (r->>'hotline')::bigint,
                        greatest(happened, coalesce((r->>'entered_at')::timestamptz, happened)),
                        r->>'reason', (r->>'cause')::integer, r->>'cause_text');
            END IF;
        WHEN 'late' THEN
            IF NOT EXISTS (SELECT 1 FROM hops WHERE node = r->>'node' AND channel_id = r->>'channel_id') THEN
                INSERT INTO cases (customer_key, opened_at, status)
                VALUES (r->>'key', coalesce((r->>'entered_at')::timestamptz, happened), 'open')
                RETURNING id INTO case_of;
                INSERT INTO hops (case_id, seq, node, channel_id, channel_name, channel_kind, media, dialled,
                                  dialled_e164, caller_num, caller_name, entered_at, number_id, hotline_id)
                VALUES (case_of, 1, r->>'node', r->>'channel_id', r->>'channel_name', r->>'channel_kind',
                        r->>'media', r->>'dialled', r->>'dialled_e164', r->>'caller_num', r->>'caller_name',
                        coalesce((r->>'entered_at')::timestamptz, happened), (r->>'number')::bigint,
                        (r->>'hotline')::bigint);
            END IF;
        WHEN 'joined' THEN
            INSERT INTO case_participants (case_id, agent_id, node, channel_id, invited_by, joined_at)
            VALUES ((r->>'case')::bigint, (r->>'agent')::bigint, r->>'node', r->>'channel_id',
                    r->>'invited_by', happened)
            ON CONFLICT (node, channel_id) DO NOTHING;
        WHEN 'left' THEN
            UPDATE case_participants SET left_at = greatest(happened, joined_at)
             WHERE node = r->>'node' AND channel_id = r->>'channel_id' AND left_at IS NULL;
        WHEN 'transfer' THEN
            INSERT INTO transfers (request, case_id, hop_id, at, kind, asked_by, from_queue_id,
                                   from_agent_id, target, outcome, detail)
            VALUES (r->>'request', case_of, the_hop, happened, r->>'kind', r->>'asked_by',
                    (r->>'from_queue')::bigint, (r->>'from_agent')::bigint, r->>'target', r->>'outcome',
                    coalesce(r->>'detail', ''))
            ON CONFLICT (request) DO NOTHING;
            IF r->>'outcome' = 'transferred' THEN  -- the agent left: no live talk until the next answer
                UPDATE hops SET agent_id = NULL WHERE id = the_hop;
            END IF;
        WHEN 'media' THEN  -- migration 023's: a browser's camera turned on or off
            INSERT INTO media_changes (case_id, hop_id, at, media)
            SELECT h.case_id, h.id, happened, r->>'media' FROM hops h WHERE h.id = the_hop;
            UPDATE hops SET media = r->>'media' WHERE id = the_hop;
        END CASE;  -- any other "k": CASE_NOT_FOUND, and the batch is written record by record
    END LOOP;
    RETURN closed;
END
$$;
