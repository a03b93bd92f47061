-- Holds in a talk (issue 19: the agent's desk has Hold, a SIP phone its hold button). A hold is a
-- re-INVITE with sendonly (or inactive) on a leg of the talk's bridge; Asterisk sends the app
-- ChannelHold, plays music on hold to the other side by itself, and ChannelUnhold on the re-INVITE
-- back to sendrecv (hotline.engine.holds).
--   holds      one per hold: the case and hop of the talk (the call's own hop), its queue and
--              agent, who held (`agent`: the agent's leg; `customer`: the caller's own phone or
--              page), started_at and ended_at (NULL while it lasts). A hold still open when the
--              talk ends is closed at the talk's end (by the engine; a hop that ends with one
--              open, the daemon gone, closes it at the hop's end).
-- Written through the call's write-behind as records 'hold' and 'hold_end'; contact events
-- `hold_started` (data: hold_id, held_by) and `hold_ended` (data: hold_id, held_by, hold_ms).
-- stats_queue and stats_agent gain hold_count, hold_time_s and avg_hold_s (hold_time_s per answered
-- call) of the agents' holds, in the bucket of the hold's start; every other column is migration
-- 039's.

CREATE TABLE holds (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES cases (id),
    hop_id      bigint NOT NULL REFERENCES hops (id),
    queue_id    bigint REFERENCES queues (id),
    agent_id    bigint REFERENCES agents (id),
    held_by     text NOT NULL CHECK (held_by IN ('agent', 'customer')),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz CHECK (ended_at >= started_at)
);
CREATE INDEX holds_case_idx ON holds (case_id);
CREATE INDEX holds_started_idx ON holds (started_at);
CREATE INDEX holds_open_idx ON holds (hop_id) WHERE ended_at IS NULL;

---------------------------------------------------------------------------------------------------
-- Writing them: record_call_events() takes the two new kinds and hands every other record to the
-- function it replaces (039's, which wraps the ones before), in the batch's order.
---------------------------------------------------------------------------------------------------

ALTER FUNCTION record_call_events(jsonb) RENAME TO record_call_events_before_holds;

CREATE FUNCTION record_hold_event(r jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    happened timestamptz := coalesce((r->>'at')::timestamptz, now());
    the_hop bigint := (r->>'hop')::bigint;
BEGIN
    IF the_hop IS NULL THEN  -- a hop written late: named by its channel
        SELECT id INTO the_hop FROM hops WHERE node = r->>'node' AND channel_id = r->>'channel_id';
    END IF;
    IF r->>'k' = 'hold' THEN
        INSERT INTO holds (case_id, hop_id, queue_id, agent_id, held_by, started_at)
        SELECT h.case_id, h.id, (r->>'queue')::bigint, (r->>'agent')::bigint, r->>'by', happened
          FROM hops h WHERE h.id = the_hop
           -- one open hold per side; a record retried alone (its batch refused) is not a second
           AND NOT EXISTS (SELECT 1 FROM holds o WHERE o.hop_id = h.id AND o.held_by = r->>'by'
                                                   AND (o.ended_at IS NULL OR o.started_at = happened));
    ELSE
        UPDATE holds SET ended_at = greatest(happened, started_at)
         WHERE hop_id = the_hop AND held_by = r->>'by' AND ended_at IS NULL AND started_at <= happened;
    END IF;
END
$$;

CREATE FUNCTION record_call_events(batch jsonb) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    closed integer := 0;
BEGIN
    IF NOT jsonb_path_exists(batch, '$[*] ? (@.k == "hold" || @.k == "hold_end")') THEN
        RETURN record_call_events_before_holds(batch);
    END IF;
    FOR r IN SELECT value FROM jsonb_array_elements(batch) LOOP
        IF r->>'k' IN ('hold', 'hold_end') THEN
            PERFORM record_hold_event(r);
        ELSE
            closed := closed + record_call_events_before_holds(jsonb_build_array(r));
        END IF;
    END LOOP;
    RETURN closed;
END
$$;

-- A hop that ends with a hold open (the daemon went away mid-hold) closes it at its end.
CREATE FUNCTION close_holds_of_ended_hop() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE holds SET ended_at = greatest(NEW.ended_at, started_at)
     WHERE hop_id = NEW.id AND ended_at IS NULL;
    RETURN NULL;
END
$$;
CREATE TRIGGER hops_close_holds AFTER UPDATE OF ended_at ON hops
    FOR EACH ROW WHEN (OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL)
    EXECUTE FUNCTION close_holds_of_ended_hop();

CREATE FUNCTION contact_events_of_hold() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hotline text := (SELECT hotline_name(hotline_id) FROM hops WHERE id = NEW.hop_id);
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'hold_started', NEW.started_at, hotline,
            queue_name(NEW.queue_id), agent_name(NEW.agent_id),
            jsonb_build_object('hold_id', NEW.id, 'held_by', NEW.held_by));
    END IF;
    IF NEW.ended_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.ended_at IS NULL) THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'hold_ended', NEW.ended_at, hotline,
            queue_name(NEW.queue_id), agent_name(NEW.agent_id),
            jsonb_build_object('hold_id', NEW.id, 'held_by', NEW.held_by,
                               'hold_ms', round(extract(epoch FROM NEW.ended_at - NEW.started_at) * 1000)::bigint));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER holds_contact_events AFTER INSERT OR UPDATE OF ended_at ON holds
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_hold();

---------------------------------------------------------------------------------------------------
-- Statistics: the agents' holds (a customer's own hold is not the agent's handling time)
---------------------------------------------------------------------------------------------------

-- The agents' holds begun in [since, until), each with its length so far (an open one: until now).
CREATE FUNCTION hold_figures(since timestamptz, until timestamptz)
RETURNS TABLE (hold_id bigint, queue_id bigint, agent_id bigint, started_at timestamptz, hold_ms numeric)
LANGUAGE sql STABLE AS $$
    SELECT h.id, h.queue_id, h.agent_id, h.started_at,
           extract(epoch FROM coalesce(h.ended_at, greatest(now(), h.started_at)) - h.started_at) * 1000
      FROM holds h
     WHERE h.started_at >= since AND h.started_at < until AND h.held_by = 'agent'
$$;

DROP VIEW stats_queue_today;
DROP VIEW stats_agent_today;
DROP FUNCTION stats_queue(timestamptz, timestamptz, interval, integer, text);
DROP FUNCTION stats_agent(timestamptz, timestamptz, interval, text);

CREATE FUNCTION stats_queue(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
                            short_abandon_s integer DEFAULT 5,
                            tz text DEFAULT current_setting('TimeZone'))
RETURNS TABLE (queue_id bigint, queue text, bucket_start timestamptz, bucket_end timestamptz,
               offered bigint, answered bigint, answered_in_sl bigint, abandoned bigint,
               short_abandons bigint, abandoned_in_sl bigint, overflowed bigint, exited bigint,
               refused bigint, failed bigint, waiting bigint, busy bigint, closed bigint,
               service_level_pct numeric, sl_answered_pct numeric, sl_offered_pct numeric,
               abandon_rate_pct numeric, asa_s integer, avg_wait_s integer, max_wait_s integer,
               avg_talk_s integer, aht_s integer, sl_threshold_s integer,
               transferred_out bigint, transferred_in bigint,
               callbacks_requested bigint, callbacks_answered bigint, callbacks_failed bigint,
               time_to_callback_s integer,
               survey_offered bigint, survey_responses bigint, survey_response_pct numeric,
               survey_avg_score numeric, hold_count bigint, hold_time_s integer, avg_hold_s integer)
LANGUAGE sql STABLE AS $$
    WITH visit AS (
        SELECT v.*, stats_bucket_of(v.joined_at, since, bucket, tz) AS b,
               v.wait_ms <= q.service_level_s * 1000 AS in_sl, q.wrapup_s
          FROM stats_queue_visits(since, until) v JOIN queues q ON q.id = v.queue_id
    ), per_visit AS (
        SELECT queue_id, b,
               count(*) AS offered,
               count(*) FILTER (WHERE outcome = 'answer') AS answered,
               count(*) FILTER (WHERE outcome = 'answer' AND in_sl) AS answered_in_sl,
               count(*) FILTER (WHERE outcome = 'abandon') AS abandoned,
               count(*) FILTER (WHERE outcome = 'abandon' AND wait_ms < short_abandon_s * 1000)
                   AS short_abandons,
               count(*) FILTER (WHERE outcome = 'abandon' AND in_sl) AS abandoned_in_sl,
               count(*) FILTER (WHERE outcome = 'overflow') AS overflowed,
               count(*) FILTER (WHERE outcome = 'exit_key') AS exited,
               count(*) FILTER (WHERE outcome = 'callback') AS callbacks_requested,
               count(*) FILTER (WHERE outcome IS NULL AND hop_ended) AS failed,
               count(*) FILTER (WHERE outcome IS NULL AND NOT hop_ended) AS waiting,
               avg(wait_ms) FILTER (WHERE outcome = 'answer') AS asa_ms,
               avg(wait_ms) AS avg_wait_ms,
               max(wait_ms) AS max_wait_ms,
               count(talk_ms) AS talks,
               sum(talk_ms) AS talk_ms,
               sum(talk_ms + wrapup_s * 1000) AS handled_ms
          FROM visit GROUP BY queue_id, b
    ), callback_talk AS (
        -- the talks of placed callbacks: completes whose hop never joined this queue before them
        SELECT e.queue_id, stats_bucket_of(e.at, since, bucket, tz) AS b, count(*) AS talks,
               sum(e.talk_ms) AS talk_ms, sum(e.talk_ms + q.wrapup_s * 1000) AS handled_ms
          FROM queues q
          JOIN queue_events e ON e.queue_id = q.id AND e.at >= since AND e.at < until
                             AND e.event = 'complete' AND e.talk_ms IS NOT NULL
         WHERE NOT EXISTS (SELECT 1 FROM queue_events j
                            WHERE j.hop_id = e.hop_id AND j.queue_id = e.queue_id AND j.event = 'join'
                              AND j.id < e.id)
         GROUP BY 1, 2
    ), turned_away AS (
        -- an overflow with no visit open: the queue refused the caller before any join (max_len,
        -- or join_empty = false with nobody logged in); the detail says which
        SELECT o.queue_id, stats_bucket_of(o.at, since, bucket, tz) AS b, count(*) AS refused
          FROM queues q
          JOIN queue_events o ON o.queue_id = q.id AND o.at >= since AND o.at < until AND o.event = 'overflow'
         WHERE (SELECT p.event FROM queue_events p
                 WHERE p.hop_id = o.hop_id AND p.queue_id = o.queue_id AND p.id < o.id
                   AND p.event IN ('join', 'answer', 'abandon', 'overflow', 'exit_key')
                 ORDER BY p.id DESC LIMIT 1) IS DISTINCT FROM 'join'
         GROUP BY 1, 2
    ), before_queue AS (
        SELECT hl.entry_queue_id AS queue_id, stats_bucket_of(h.entered_at, since, bucket, tz) AS b,
               count(*) FILTER (WHERE h.end_reason = 'busy') AS busy,
               count(*) FILTER (WHERE h.end_reason = 'closed') AS closed
          FROM hotlines hl
          JOIN hops h ON h.hotline_id = hl.id AND h.entered_at >= since AND h.entered_at < until
                     AND h.end_reason IN ('busy', 'closed')
         WHERE hl.entry_queue_id IS NOT NULL
         GROUP BY 1, 2
    ), passed_on AS (
        -- talks of this queue an agent transferred, in the bucket of the transfer
        SELECT t.queue_id, stats_bucket_of(t.at, since, bucket, tz) AS b, count(*) AS transferred_out
          FROM queues q
          JOIN queue_events t ON t.queue_id = q.id AND t.at >= since AND t.at < until AND t.event = 'transfer'
         GROUP BY 1, 2
    ), passed_in AS (
        -- visits a transfer began: joins whose hop's last join or transfer before them is a transfer
        SELECT j.queue_id, stats_bucket_of(j.at, since, bucket, tz) AS b, count(*) AS transferred_in
          FROM queues q
          JOIN queue_events j ON j.queue_id = q.id AND j.at >= since AND j.at < until AND j.event = 'join'
         WHERE (SELECT p.event FROM queue_events p
                 WHERE p.hop_id = j.hop_id AND p.id < j.id AND p.event IN ('join', 'transfer')
                 ORDER BY p.id DESC LIMIT 1) = 'transfer'
         GROUP BY 1, 2
    ), called_back AS (
        -- callbacks that ended in the period, in the bucket of their end: answered, or given up
        -- (not answered in their tries, or expired); time to callback from the caller's request
        SELECT c.queue_id, stats_bucket_of(c.ended_at, since, bucket, tz) AS b,
               count(*) FILTER (WHERE c.status = 'answered') AS callbacks_answered,
               count(*) FILTER (WHERE c.status IN ('failed', 'expired')) AS callbacks_failed,
               avg(extract(epoch FROM c.ended_at - c.requested_at) * 1000)
                   FILTER (WHERE c.status = 'answered') AS to_callback_ms
          FROM callbacks c
         WHERE c.ended_at >= since AND c.ended_at < until AND c.status IN ('answered', 'failed', 'expired')
         GROUP BY 1, 2
    ), surveyed AS (
        -- the surveys offered after talks of this queue, in the bucket of the talk's end
        SELECT s.queue_id, stats_bucket_of(s.started_at, since, bucket, tz) AS b,
               count(*) AS offered, count(*) FILTER (WHERE s.answers > 0) AS responses,
               sum(s.score_sum) AS score_sum, sum(s.answers) AS answers
          FROM survey_figures(since, until) s
         GROUP BY 1, 2
    ), held AS (
        -- the agents' holds in talks of this queue, in the bucket of the hold's start
        SELECT h.queue_id, stats_bucket_of(h.started_at, since, bucket, tz) AS b,
               count(*) AS holds, sum(h.hold_ms) AS hold_ms
          FROM hold_figures(since, until) h
         WHERE h.queue_id IS NOT NULL
         GROUP BY 1, 2
    ), keys AS (
        SELECT queue_id, b FROM per_visit UNION SELECT queue_id, b FROM turned_away
        UNION SELECT queue_id, b FROM before_queue UNION SELECT queue_id, b FROM passed_on
        UNION SELECT queue_id, b FROM called_back UNION SELECT queue_id, b FROM callback_talk
        UNION SELECT queue_id, b FROM surveyed UNION SELECT queue_id, b FROM held
    )
    SELECT q.id, q.name::text, k.b, stats_bucket_end(k.b, since, until, bucket, tz),
           coalesce(v.offered, 0), coalesce(v.answered, 0), coalesce(v.answered_in_sl, 0),
           coalesce(v.abandoned, 0), coalesce(v.short_abandons, 0), coalesce(v.abandoned_in_sl, 0),
           coalesce(v.overflowed, 0), coalesce(v.exited, 0), coalesce(t.refused, 0), coalesce(v.failed, 0),
           coalesce(v.waiting, 0), coalesce(r.busy, 0), coalesce(r.closed, 0),
           stats_pct(v.answered_in_sl, v.answered + v.abandoned - v.short_abandons),
           stats_pct(v.answered_in_sl, v.answered),
           stats_pct(v.answered_in_sl + v.abandoned_in_sl, v.answered + v.abandoned),
           stats_pct(v.abandoned, v.offered),
           stats_s(v.asa_ms), stats_s(v.avg_wait_ms), stats_s(v.max_wait_ms),
           stats_s((coalesce(v.talk_ms, 0) + coalesce(ct.talk_ms, 0))::numeric
                   / nullif(coalesce(v.talks, 0) + coalesce(ct.talks, 0), 0)),
           stats_s((coalesce(v.handled_ms, 0) + coalesce(ct.handled_ms, 0))::numeric
                   / nullif(coalesce(v.talks, 0) + coalesce(ct.talks, 0), 0)),
           q.service_level_s,
           coalesce(o.transferred_out, 0), coalesce(i.transferred_in, 0),
           coalesce(v.callbacks_requested, 0), coalesce(c.callbacks_answered, 0),
           coalesce(c.callbacks_failed, 0), stats_s(c.to_callback_ms),
           coalesce(s.offered, 0), coalesce(s.responses, 0), stats_pct(s.responses, s.offered),
           round(s.score_sum::numeric / nullif(s.answers, 0), 2),
           coalesce(hd.holds, 0), coalesce(stats_s(hd.hold_ms), 0),
           stats_s(coalesce(hd.hold_ms, 0) / nullif(v.answered, 0))
      FROM keys k
      JOIN queues q ON q.id = k.queue_id
      LEFT JOIN per_visit v ON v.queue_id = k.queue_id AND v.b = k.b
      LEFT JOIN turned_away t ON t.queue_id = k.queue_id AND t.b = k.b
      LEFT JOIN before_queue r ON r.queue_id = k.queue_id AND r.b = k.b
      LEFT JOIN passed_on o ON o.queue_id = k.queue_id AND o.b = k.b
      LEFT JOIN passed_in i ON i.queue_id = k.queue_id AND i.b = k.b
      LEFT JOIN called_back c ON c.queue_id = k.queue_id AND c.b = k.b
      LEFT JOIN callback_talk ct ON ct.queue_id = k.queue_id AND ct.b = k.b
      LEFT JOIN surveyed s ON s.queue_id = k.queue_id AND s.b = k.b
      LEFT JOIN held hd ON hd.queue_id = k.queue_id AND hd.b = k.b
     ORDER BY q.name, k.b
$$;

CREATE FUNCTION stats_agent(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
                            tz text DEFAULT current_setting('TimeZone'))
RETURNS TABLE (agent_id bigint, agent text, bucket_start timestamptz, bucket_end timestamptz,
               rung bigint, answered bigint, missed bigint, completed bigint,
               talk_s integer, wrapup_s integer, aht_s integer, logged_in_s integer, paused_s integer,
               pause_by_reason jsonb, occupancy_pct numeric,
               transferred_out bigint, transferred_in bigint,
               survey_offered bigint, survey_responses bigint, survey_response_pct numeric,
               survey_avg_score numeric, hold_count bigint, hold_time_s integer, avg_hold_s integer)
LANGUAGE sql STABLE AS $$
    WITH ev AS (
        SELECT e.agent_id, stats_bucket_of(e.at, since, bucket, tz) AS b, e.event, e.talk_ms,
               q.wrapup_s, e.detail,
               -- a subquery, not a join: only ring_noanswer rows look at what came next
               CASE WHEN e.event = 'ring_noanswer' THEN
                   (SELECT n.event FROM queue_events n
                     WHERE n.hop_id = e.hop_id AND n.queue_id = e.queue_id AND n.id > e.id
                       AND n.event <> 'ring_noanswer'
                     ORDER BY n.id LIMIT 1)
               END AS next_event,
               -- an answer whose visit a transfer began (its join's last join or transfer before it)
               CASE WHEN e.event = 'answer' THEN
                   (SELECT p.event FROM queue_events p
                     WHERE p.hop_id = e.hop_id AND p.event IN ('join', 'transfer')
                       AND p.id < (SELECT j.id FROM queue_events j
                                    WHERE j.hop_id = e.hop_id AND j.queue_id = e.queue_id
                                      AND j.event = 'join' AND j.id < e.id
                                    ORDER BY j.id DESC LIMIT 1)
                     ORDER BY p.id DESC LIMIT 1) = 'transfer'
               END AS after_transfer
          FROM agents a
          JOIN queue_events e ON e.agent_id = a.id AND e.at >= since AND e.at < until
                             AND e.event IN ('ring', 'ring_noanswer', 'answer', 'complete', 'transfer')
          JOIN queues q ON q.id = e.queue_id
    ), calls AS (
        SELECT agent_id, b,
               count(*) FILTER (WHERE event = 'ring') AS rung,
               count(*) FILTER (WHERE event = 'answer') AS answered,
               count(*) FILTER (WHERE event = 'ring_noanswer'
                                  AND detail NOT IN ('caller gone', 'dial failed', 'caller left the queue')
                                  AND detail NOT LIKE 'answered by %'
                                  AND next_event IS DISTINCT FROM 'answer') AS missed,
               count(*) FILTER (WHERE event = 'complete') AS completed,
               count(*) FILTER (WHERE event = 'transfer') AS transferred_out,
               count(*) FILTER (WHERE event = 'answer' AND after_transfer) AS transferred_in,
               sum(talk_ms) AS talk_ms,
               sum(wrapup_s) FILTER (WHERE event = 'complete') * 1000 AS wrapup_ms
          FROM ev GROUP BY agent_id, b
    ), logged AS (
        SELECT s.agent_id, w.bucket_start AS b,
               sum(greatest(0, extract(epoch FROM least(coalesce(s.logged_out_at, now()), w.bucket_end)
                                                 - greatest(s.logged_in_at, w.bucket_start)))) * 1000 AS ms
          FROM stats_buckets(since, until, bucket, tz) w
          JOIN agent_sessions s ON s.logged_in_at < w.bucket_end
                               AND coalesce(s.logged_out_at, 'infinity') > w.bucket_start
         GROUP BY 1, 2
    ), paused_by_reason AS (
        SELECT p.agent_id, w.bucket_start AS b, p.reason,
               sum(greatest(0, extract(epoch FROM least(coalesce(p.ended_at, now()), w.bucket_end)
                                                 - greatest(p.started_at, w.bucket_start)))) * 1000 AS ms
          FROM stats_buckets(since, until, bucket, tz) w
          JOIN agent_pauses p ON p.started_at < w.bucket_end
                             AND coalesce(p.ended_at, 'infinity') > w.bucket_start
         GROUP BY 1, 2, 3
    ), paused AS (
        SELECT agent_id, b, sum(ms) AS ms, jsonb_object_agg(reason, stats_s(ms) ORDER BY reason) AS by_reason
          FROM paused_by_reason GROUP BY 1, 2
    ), surveyed AS (
        -- the surveys offered after this agent's talks, in the bucket of the talk's end
        SELECT s.agent_id, stats_bucket_of(s.started_at, since, bucket, tz) AS b,
               count(*) AS offered, count(*) FILTER (WHERE s.answers > 0) AS responses,
               sum(s.score_sum) AS score_sum, sum(s.answers) AS answers
          FROM survey_figures(since, until) s
         WHERE s.agent_id IS NOT NULL
         GROUP BY 1, 2
    ), held AS (
        -- this agent's holds, in the bucket of the hold's start
        SELECT h.agent_id, stats_bucket_of(h.started_at, since, bucket, tz) AS b,
               count(*) AS holds, sum(h.hold_ms) AS hold_ms
          FROM hold_figures(since, until) h
         WHERE h.agent_id IS NOT NULL
         GROUP BY 1, 2
    ), keys AS (
        SELECT agent_id, b FROM calls UNION SELECT agent_id, b FROM logged WHERE ms > 0
        UNION SELECT agent_id, b FROM surveyed UNION SELECT agent_id, b FROM held
    )
    SELECT a.id, a.name::text, k.b, stats_bucket_end(k.b, since, until, bucket, tz),
           coalesce(c.rung, 0), coalesce(c.answered, 0), coalesce(c.missed, 0), coalesce(c.completed, 0),
           coalesce(stats_s(c.talk_ms), 0), coalesce(stats_s(c.wrapup_ms), 0),
           stats_s((c.talk_ms + c.wrapup_ms) / nullif(c.completed, 0)),
           coalesce(stats_s(l.ms), 0), coalesce(stats_s(p.ms), 0), coalesce(p.by_reason, '{}'),
           stats_pct((coalesce(c.talk_ms, 0) + coalesce(c.wrapup_ms, 0)), l.ms - coalesce(p.ms, 0)),
           coalesce(c.transferred_out, 0), coalesce(c.transferred_in, 0),
           coalesce(s.offered, 0), coalesce(s.responses, 0), stats_pct(s.responses, s.offered),
           round(s.score_sum::numeric / nullif(s.answers, 0), 2),
           coalesce(hd.holds, 0), coalesce(stats_s(hd.hold_ms), 0),
           stats_s(coalesce(hd.hold_ms, 0) / nullif(c.answered, 0))
      FROM keys k
      JOIN agents a ON a.id = k.agent_id
      LEFT JOIN calls c ON c.agent_id = k.agent_id AND c.b = k.b
      LEFT JOIN logged l ON l.agent_id = k.agent_id AND l.b = k.b
      LEFT JOIN paused p ON p.agent_id = k.agent_id AND p.b = k.b
      LEFT JOIN surveyed s ON s.agent_id = k.agent_id AND s.b = k.b
      LEFT JOIN held hd ON hd.agent_id = k.agent_id AND hd.b = k.b
     ORDER BY a.name, k.b
$$;

CREATE VIEW stats_queue_today AS
    SELECT * FROM stats_queue(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');
CREATE VIEW stats_agent_today AS
    SELECT * FROM stats_agent(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');
