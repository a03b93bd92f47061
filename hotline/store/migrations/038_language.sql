-- Language (issue 19): callers hear their own language.
--   hotlines.language, numbers.language  the language of the prompts its callers hear: a
--       directory of Asterisk's sounds ('en', 'ru', 'en_GB'); NULL: not set (a number's: its
--       hotline's; a hotline's: Asterisk's defaultlanguage). The engine sets the caller's
--       CHANNEL(language) to it as the call enters, before any prompt.
--   ivr_options: a key `language:LANG` switches the caller's language; `language` holds LANG, and
--       `then_action` (with the target_* columns) where the caller goes next: NULL replays the
--       menu in the new language. The checks on the target columns look at the step that names
--       them: then_action for a language key, the action for any other.
--   hops.language  the language the leg's prompts were played in (NULL: Asterisk's default);
--       written by record_call_events(): a 'language' record as the leg enters, and a 'digit'
--       record of a language key (whose menu_key contact event then says {"language": LANG}).

CREATE DOMAIN sound_language AS text CHECK (VALUE ~ '^[a-z]{2,3}(_[A-Z]{2})?$');

ALTER TABLE hotlines ADD COLUMN language sound_language;
ALTER TABLE numbers ADD COLUMN language sound_language;
ALTER TABLE hops ADD COLUMN language sound_language;

ALTER TABLE ivr_options ADD COLUMN language sound_language,
    ADD COLUMN then_action text CHECK (then_action IN ('menu', 'queue', 'hotline', 'hangup', 'video',
                                                       'callback'));
DO $$
DECLARE c text;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
              WHERE conrelid = 'ivr_options'::regclass AND contype = 'c'
                AND (pg_get_constraintdef(oid) LIKE '%target_menu_id IS NOT NULL%'
                     OR pg_get_constraintdef(oid) LIKE '%target_queue_id IS NOT NULL%'
                     OR pg_get_constraintdef(oid) LIKE '%target_hotline_id IS NOT NULL%'
                     OR pg_get_constraintdef(oid) LIKE '%''repeat''%') LOOP
        EXECUTE format('ALTER TABLE ivr_options DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
ALTER TABLE ivr_options
    ADD CONSTRAINT ivr_options_action_check
        CHECK (action IN ('menu', 'queue', 'hotline', 'hangup', 'video', 'repeat', 'callback', 'language')),
    ADD CONSTRAINT ivr_options_language_check
        CHECK ((action = 'language') = (language IS NOT NULL)
               AND (then_action IS NULL OR action = 'language')),
    ADD CONSTRAINT ivr_options_menu_target_check
        CHECK ((coalesce(then_action, action) = 'menu') = (target_menu_id IS NOT NULL)),
    ADD CONSTRAINT ivr_options_hotline_target_check
        CHECK ((coalesce(then_action, action) = 'hotline') = (target_hotline_id IS NOT NULL)),
    ADD CONSTRAINT ivr_options_queue_target_check
        CHECK (CASE coalesce(then_action, action) WHEN 'queue' THEN target_queue_id IS NOT NULL
                                                 WHEN 'video' THEN true
                                                 WHEN 'callback' THEN true
                                                 ELSE target_queue_id IS NULL END);

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
        IF the_hop IS NULL AND r->>'k' IN ('event', 'digit', 'close', 'talk', 'transfer', 'media', 'rec_start', 'language') THEN
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
            -- a menu key `language:LANG` (migration 038) carries the language it chose
            UPDATE hops SET ivr_path = ivr_path || (r->>'digit'),
                            language = coalesce(r->>'language', language)
             WHERE id = the_hop;
        WHEN 'language' THEN  -- migration 038: the language the leg's prompts are played in
            UPDATE hops SET language = r->>'language' WHERE id = the_hop;
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

CREATE OR REPLACE FUNCTION contact_events_of_hop() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hl text := hotline_name(NEW.hotline_id);
    q text := queue_name(NEW.queue_id);
    a text := agent_name(NEW.agent_id);
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.seq = 1 THEN
            PERFORM add_contact_event(NEW.case_id, NULL, 'case_opened',
                                      (SELECT opened_at FROM cases WHERE id = NEW.case_id), hl, NULL, NULL,
                                      jsonb_build_object('customer', (SELECT customer_key FROM cases
                                                                       WHERE id = NEW.case_id)));
        END IF;
        PERFORM add_contact_event(NEW.case_id, NEW.id, 'entered_hotline', NEW.entered_at, hl, q, NULL,
            jsonb_build_object('seq', NEW.seq, 'channel_kind', NEW.channel_kind, 'media', NEW.media,
                               'dialled', NEW.dialled, 'caller', NEW.caller_num,
                               'caller_name', nullif(NEW.caller_name, ''), 'node', NEW.node,
                               'channel_id', NEW.channel_id));
        IF NEW.ended_at IS NOT NULL THEN  -- a leg refused at the door is written ended at once
            PERFORM add_contact_event(NEW.case_id, NEW.id, 'ended', NEW.ended_at, hl, q, a,
                jsonb_build_object('reason', NEW.end_reason, 'cause', NEW.hangup_cause,
                                   'cause_text', NEW.hangup_cause_text));
            IF (SELECT status FROM cases WHERE id = NEW.case_id) = 'closed' THEN
                PERFORM add_contact_event(NEW.case_id, NULL, 'case_closed', NEW.ended_at, hl, NULL, NULL, '{}');
            END IF;
        END IF;
        RETURN NULL;
    END IF;
    IF length(NEW.ivr_path) > length(OLD.ivr_path) AND left(NEW.ivr_path, length(OLD.ivr_path)) = OLD.ivr_path THEN
        PERFORM add_contact_event(NEW.case_id, NEW.id, 'menu_key', now(), hl, q, a,
            jsonb_build_object('key', substr(NEW.ivr_path, length(OLD.ivr_path) + 1), 'path', NEW.ivr_path)
            || CASE WHEN NEW.language IS DISTINCT FROM OLD.language
                    THEN jsonb_build_object('language', NEW.language) ELSE '{}' END);
    END IF;
    IF OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL THEN
        PERFORM add_contact_event(NEW.case_id, NEW.id, 'ended', NEW.ended_at, hl, q, a,
            jsonb_build_object('reason', NEW.end_reason, 'cause', NEW.hangup_cause,
                               'cause_text', NEW.hangup_cause_text));
    END IF;
    RETURN NULL;
END
$$;
