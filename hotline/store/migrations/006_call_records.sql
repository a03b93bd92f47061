-- What calls record (queue events, keys pressed, hop ends) arrives from the daemon's write-behind
-- as one jsonb array per batch and is applied here, in order, by one function call: one
-- statement, one round trip and one commit per batch instead of per record, and the daemon
-- only encodes JSON. Each record says what it is in "k":
--   {"k": "event", "at", "queue", "case", "hop", "agent", "event", "position", "wait_ms",
--    "ring_ms", "talk_ms", "detail"}   a queue_events row and what it changes on its hop and case
--   {"k": "digit", "hop", "digit"}      a key pressed, appended to the hop's IVR path
--   {"k": "close", "hop", "at", "reason", "cause", "cause_text"}
--                                       the hop's end (once), and its case's with its last live hop
-- "at" is when it happened (ISO 8601; absent: now), so a record written late is dated right.
-- Returns how many hops it closed.
CREATE FUNCTION record_call_events(batch jsonb) RETURNS integer
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
        CASE r->>'k'
        WHEN 'event' THEN
            INSERT INTO queue_events (at, queue_id, case_id, hop_id, agent_id, event, position, wait_ms,
                                      ring_ms, talk_ms, detail)
            VALUES (happened, (r->>'queue')::bigint, (r->>'case')::bigint, the_hop, (r->>'agent')::bigint,
                    r->>'event', (r->>'position')::integer, (r->>'wait_ms')::integer,
                    (r->>'ring_ms')::integer, (r->>'talk_ms')::integer, coalesce(r->>'detail', ''));
            IF r->>'event' = 'join' THEN
                UPDATE hops SET queue_id = (r->>'queue')::bigint, queued_at = happened WHERE id = the_hop;
            ELSIF r->>'event' = 'answer' THEN
                UPDATE hops SET agent_id = (r->>'agent')::bigint, answered_at = happened WHERE id = the_hop;
                UPDATE cases SET last_agent_id = (r->>'agent')::bigint WHERE id = (r->>'case')::bigint;
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
        END CASE;  -- any other "k": CASE_NOT_FOUND, and the batch is written record by record
    END LOOP;
    RETURN closed;
END
$$;

-- A new contact: its case and first hop, the hop taking the lowest line of its number that no
-- live leg holds (`line_limit` lines; NULL: unlimited, always one more than the live legs).
-- Legs of one number take their line one at a time (a transaction-scoped advisory lock on the
-- number), and each statement of this VOLATILE function sees what the previous holder committed:
-- no two legs race for the same line. Computing it in one statement instead let concurrent legs
-- all pick the same line, all but one fail on hops_line_held and retry, and under overload the
-- retries fed on themselves until calls waited seconds for a hop. Returns the hop, or no row
-- when every line is held (the caller answers busy).
CREATE FUNCTION open_case_with_hop(
    number_id bigint, line_limit integer, customer_key text, entered_at timestamptz, node text,
    channel_id text, channel_name text, channel_kind text, media text, dialled text,
    dialled_e164 text, caller_num text, caller_name text, hotline_id bigint)
RETURNS SETOF hops
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    free_line integer;
    new_case bigint;
BEGIN
    IF open_case_with_hop.number_id IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('hotline.number_lines'), open_case_with_hop.number_id::integer);
        SELECT min(l) INTO free_line
          FROM generate_series(1, coalesce(line_limit, (
                   SELECT count(*) FROM hops h
                    WHERE h.number_id = open_case_with_hop.number_id AND h.ended_at IS NULL)::integer + 1)) AS l
         WHERE NOT EXISTS (SELECT 1 FROM hops h
                            WHERE h.number_id = open_case_with_hop.number_id AND h.line = l
                              AND h.ended_at IS NULL);
        IF free_line IS NULL THEN
            RETURN;
        END IF;
    END IF;
    INSERT INTO cases (customer_key, opened_at)
    VALUES (open_case_with_hop.customer_key, coalesce(open_case_with_hop.entered_at, now()))
    RETURNING id INTO new_case;
    RETURN QUERY
    INSERT INTO hops AS h (case_id, seq, node, channel_id, channel_name, channel_kind, media, dialled,
                           dialled_e164, caller_num, caller_name, entered_at, number_id, hotline_id, line)
    VALUES (new_case, 1, open_case_with_hop.node, open_case_with_hop.channel_id,
            open_case_with_hop.channel_name, open_case_with_hop.channel_kind, open_case_with_hop.media,
            open_case_with_hop.dialled, open_case_with_hop.dialled_e164, open_case_with_hop.caller_num,
            open_case_with_hop.caller_name, coalesce(open_case_with_hop.entered_at, now()),
            open_case_with_hop.number_id, open_case_with_hop.hotline_id, free_line)
    RETURNING h.*;
END
$$;
