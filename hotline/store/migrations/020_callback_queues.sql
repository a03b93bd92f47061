-- Queued callbacks offered by a queue: the key a waiting caller presses (NULL: none offered), how
-- many times an unanswered callback is tried again and how far apart, and when an unplaced one is
-- dropped (NULL: never). A hop that ended with the caller asking to be called back ends
-- 'callback', and its queue visit records a 'callback' event (not an abandon).
ALTER TABLE queues
    ADD COLUMN callback_key text CHECK (callback_key ~ '^[0-9*#]$'),
    ADD COLUMN callback_retries integer NOT NULL DEFAULT 2 CHECK (callback_retries BETWEEN 0 AND 10),
    ADD COLUMN callback_retry_interval_s seconds NOT NULL DEFAULT 300
        CHECK (callback_retry_interval_s BETWEEN 10 AND 86400),
    ADD COLUMN callback_expiry_s seconds DEFAULT 14400 CHECK (callback_expiry_s BETWEEN 60 AND 604800);

ALTER TABLE hops DROP CONSTRAINT hops_end_reason_check;
ALTER TABLE hops ADD CONSTRAINT hops_end_reason_check
    CHECK (end_reason IN ('completed', 'abandoned', 'busy', 'overflow', 'transferred', 'switched', 'failed',
                          'closed', 'callback'));
ALTER TABLE queue_events DROP CONSTRAINT queue_events_event_check;
ALTER TABLE queue_events ADD CONSTRAINT queue_events_event_check
    CHECK (event IN ('join', 'ring', 'ring_noanswer', 'answer', 'abandon', 'overflow', 'exit_key', 'complete',
                     'transfer', 'callback'));

---------------------------------------------------------------------------------------------------
-- Statistics: a visit the caller left asking for a callback ends with its 'callback' event (a
-- visit of its own kind: neither abandoned nor failed); stats_queue gains callbacks_requested
-- (such visits, in the bucket of their join), callbacks_answered and callbacks_failed (the
-- callbacks table, in the bucket of their end; failed counts the expired too) and
-- time_to_callback_s (answered ones, from the request to the customer's answer). Otherwise as
-- migration 019 made it; its today view is made again with it.
---------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION stats_queue_visits(since timestamptz, until timestamptz)
RETURNS TABLE (queue_id bigint, hop_id bigint, joined_at timestamptz, outcome text, wait_ms integer,
               talk_ms integer, hop_ended boolean)
LANGUAGE sql STABLE AS $$
    SELECT j.queue_id, j.hop_id, j.at, v.outcome, v.wait_ms, v.talk_ms,
           -- a subquery, not a join: only the few visits with no outcome look their hop up
           CASE WHEN v.outcome IS NULL
                THEN (SELECT h.ended_at IS NOT NULL FROM hops h WHERE h.id = j.hop_id) END
      FROM queues q
      JOIN queue_events j ON j.queue_id = q.id AND j.at >= since AND j.at < until AND j.event = 'join'
      -- One pass over the hop's later events in this queue (queue_events (hop_id)); what comes
      -- after a next join of the same queue belongs to that next visit.
      CROSS JOIN LATERAL (
            SELECT min(e.id) FILTER (WHERE e.event = 'join') AS next_join,
                   min(e.id) FILTER (WHERE e.ends) AS outcome_id,
                   (array_agg(e.event ORDER BY e.id) FILTER (WHERE e.ends))[1] AS outcome,
                   (array_agg(e.wait_ms ORDER BY e.id) FILTER (WHERE e.ends))[1] AS wait_ms,
                   min(e.id) FILTER (WHERE e.event = 'complete') AS complete_id,
                   (array_agg(e.talk_ms ORDER BY e.id) FILTER (WHERE e.event = 'complete'))[1] AS talk_ms
              FROM (SELECT n.*, n.event IN ('answer', 'abandon', 'overflow', 'exit_key', 'callback') AS ends
                      FROM queue_events n
                     WHERE n.hop_id = j.hop_id AND n.queue_id = j.queue_id AND n.id > j.id) e) x
      CROSS JOIN LATERAL (
            SELECT x.outcome_id < coalesce(x.next_join, x.outcome_id + 1) AS in_visit,
                   x.complete_id < coalesce(x.next_join, x.complete_id + 1) AS completed) w
      CROSS JOIN LATERAL (
            SELECT CASE WHEN w.in_visit THEN x.outcome END AS outcome,
                   CASE WHEN w.in_visit THEN x.wait_ms END AS wait_ms,
                   CASE WHEN w.in_visit AND x.outcome = 'answer' AND w.completed
                        THEN x.talk_ms END AS talk_ms) v
$$;

DROP VIEW stats_queue_today;
DROP FUNCTION stats_queue(timestamptz, timestamptz, interval, integer, text);

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
               time_to_callback_s integer)
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
               avg(talk_ms) AS avg_talk_ms,
               avg(talk_ms + wrapup_s * 1000) AS aht_ms
          FROM visit GROUP BY queue_id, b
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
    ), keys AS (
        SELECT queue_id, b FROM per_visit UNION SELECT queue_id, b FROM turned_away
        UNION SELECT queue_id, b FROM before_queue UNION SELECT queue_id, b FROM passed_on
        UNION SELECT queue_id, b FROM called_back
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
           stats_s(v.avg_talk_ms), stats_s(v.aht_ms), q.service_level_s,
           coalesce(o.transferred_out, 0), coalesce(i.transferred_in, 0),
           coalesce(v.callbacks_requested, 0), coalesce(c.callbacks_answered, 0),
           coalesce(c.callbacks_failed, 0), stats_s(c.to_callback_ms)
      FROM keys k
      JOIN queues q ON q.id = k.queue_id
      LEFT JOIN per_visit v ON v.queue_id = k.queue_id AND v.b = k.b
      LEFT JOIN turned_away t ON t.queue_id = k.queue_id AND t.b = k.b
      LEFT JOIN before_queue r ON r.queue_id = k.queue_id AND r.b = k.b
      LEFT JOIN passed_on o ON o.queue_id = k.queue_id AND o.b = k.b
      LEFT JOIN passed_in i ON i.queue_id = k.queue_id AND i.b = k.b
      LEFT JOIN called_back c ON c.queue_id = k.queue_id AND c.b = k.b
     ORDER BY q.name, k.b
$$;

CREATE VIEW stats_queue_today AS
    SELECT * FROM stats_queue(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');
