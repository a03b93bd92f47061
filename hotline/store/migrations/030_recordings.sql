-- Call recording (issue 18, its first part): a queue's talks recorded through ARI's bridge
-- recording (hotline.engine.recording), one file and one row per talk segment.
--   queues.record        'always': every talk of the queue is recorded from the agent's answer
--                        to the talk's end; 'never' (the default): none is
--   recordings           one per talk segment: a case's talk gives one, a transfer or a switch to
--                        video (or back) starts the next, tied to its hop, agent and queue.
--                        name: Asterisk's name of the recording (its file is NAME.FORMAT in the
--                        recording directory); path: where the daemon expected the file when it
--                        began; state: recording | paused | done | failed (Asterisk refused or
--                        lost it: detail says why) | purged (the file deleted by `hotline
--                        recording purge`, purged_at says when) | missing (purge found no file);
--                        duration_ms: what the file holds, the segment less its pauses
--   recording_pauses     a pause of a recording (hotline recording pause, the agent page): the
--                        file holds none of its audio; resumed_at NULL while paused
-- record_call_events() is migration 024's with four branches added (rec_start, rec_pause,
-- rec_resume, rec_end) and 'rec_start' among the records that may name their hop by channel.
ALTER TABLE queues ADD COLUMN record text NOT NULL DEFAULT 'never' CHECK (record IN ('never', 'always'));

CREATE TABLE recordings (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.-]+$'),
    case_id      bigint NOT NULL REFERENCES cases (id),
    hop_id       bigint NOT NULL REFERENCES hops (id),
    agent_id     bigint REFERENCES agents (id),
    queue_id     bigint REFERENCES queues (id),
    format       text NOT NULL,
    path         text NOT NULL,
    started_at   timestamptz NOT NULL,
    ended_at     timestamptz CHECK (ended_at >= started_at),
    duration_ms  bigint CHECK (duration_ms >= 0),
    state        text NOT NULL DEFAULT 'recording'
                 CHECK (state IN ('recording', 'paused', 'done', 'failed', 'purged', 'missing')),
    detail       text,
    purged_at    timestamptz
);
CREATE INDEX recordings_case_idx ON recordings (case_id, started_at);
CREATE INDEX recordings_started_idx ON recordings (started_at);

CREATE TABLE recording_pauses (
    recording_id  bigint NOT NULL REFERENCES recordings (id) ON DELETE CASCADE,
    paused_at     timestamptz NOT NULL,
    resumed_at    timestamptz CHECK (resumed_at >= paused_at),
    asked_by      text NOT NULL DEFAULT '',
    PRIMARY KEY (recording_id, paused_at)
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
        IF the_hop IS NULL AND r->>'k' IN ('event', 'digit', 'close', 'talk', 'transfer', 'media', 'rec_start') THEN
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
        WHEN 'rec_start' THEN  -- migration 030: a talk's bridge recording began
            INSERT INTO recordings (name, case_id, hop_id, agent_id, queue_id, format, path, started_at)
            SELECT r->>'name', h.case_id, h.id, (r->>'agent')::bigint, (r->>'queue')::bigint,
                   r->>'format', r->>'path', happened
              FROM hops h WHERE h.id = the_hop
            ON CONFLICT (name) DO NOTHING;
        WHEN 'rec_pause' THEN
            INSERT INTO recording_pauses (recording_id, paused_at, asked_by)
            SELECT id, greatest(happened, started_at), coalesce(r->>'asked_by', '') FROM recordings
             WHERE name = r->>'name' AND state = 'recording'
            ON CONFLICT DO NOTHING;
            UPDATE recordings SET state = 'paused' WHERE name = r->>'name' AND state = 'recording';
        WHEN 'rec_resume' THEN
            UPDATE recording_pauses p SET resumed_at = greatest(happened, p.paused_at)
              FROM recordings g
             WHERE g.name = r->>'name' AND p.recording_id = g.id AND p.resumed_at IS NULL;
            UPDATE recordings SET state = 'recording' WHERE name = r->>'name' AND state = 'paused';
        WHEN 'rec_end' THEN
            -- a pause still open ends with the recording; the duration is what the file holds:
            -- the time recorded less the paused time (Asterisk cuts paused audio out)
            UPDATE recording_pauses p SET resumed_at = greatest(happened, p.paused_at)
              FROM recordings g
             WHERE g.name = r->>'name' AND p.recording_id = g.id AND p.resumed_at IS NULL;
            UPDATE recordings g SET ended_at = greatest(happened, g.started_at),
                   state = CASE WHEN r->>'failed' IS NULL THEN 'done' ELSE 'failed' END,
                   detail = coalesce(r->>'failed', g.detail),
                   duration_ms = CASE WHEN r->>'failed' IS NULL THEN  -- a failed one has no file
                       greatest(0, (extract(epoch FROM greatest(happened, g.started_at) - g.started_at)
                                    * 1000)::bigint
                       - coalesce((SELECT (extract(epoch FROM sum(p.resumed_at - p.paused_at)) * 1000)::bigint
                                     FROM recording_pauses p WHERE p.recording_id = g.id), 0)) END
             WHERE g.name = r->>'name' AND g.ended_at IS NULL;
        END CASE;  -- any other "k": CASE_NOT_FOUND, and the batch is written record by record
    END LOOP;
    RETURN closed;
END
$$;

-- The contact-event stream (migration 029) gets a recording's steps, from the rows themselves:
-- recording_started, recording_paused, recording_resumed, recording_stopped (done or failed).
CREATE FUNCTION contact_events_of_recording() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hl text := (SELECT hotline_name(hotline_id) FROM hops WHERE id = NEW.hop_id);
    body jsonb := jsonb_build_object('recording_id', NEW.id, 'name', NEW.name, 'format', NEW.format);
    q text := queue_name(NEW.queue_id);
    a text := agent_name(NEW.agent_id);
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'recording_started', NEW.started_at, hl, q, a, body);
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.state = 'recording' AND NEW.state = 'paused' THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'recording_paused', now(), hl, q, a, body);
    ELSIF TG_OP = 'UPDATE' AND OLD.state = 'paused' AND NEW.state = 'recording' THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'recording_resumed', now(), hl, q, a, body);
    END IF;
    IF (TG_OP = 'INSERT' OR OLD.ended_at IS NULL) AND NEW.ended_at IS NOT NULL THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'recording_stopped', NEW.ended_at, hl, q, a,
            body || jsonb_build_object('state', NEW.state, 'duration_ms', NEW.duration_ms,
                                       'detail', NEW.detail));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER recordings_contact_events AFTER INSERT OR UPDATE OF state, ended_at ON recordings
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_recording();
