-- A placed callback's talk is counted like any talk (issue 17). The placer records the agent
-- legs' ring, ring_noanswer, answer and complete (with talk_ms) in the callback's queue, on the
-- outbound leg's hop; stats_agent counts them as it counts any (rung, answered, talk time). That
-- hop has no join in the queue, so stats_queue_visits sees no visit of it: a callback is not
-- offered, answered or abandoned a second time. The request's visit counts in
-- callbacks_requested, the placed call in callbacks_answered (migration 020), and its talk in the
-- queue's avg_talk_s and aht_s with the visits' talks (a complete with no join of its hop in that
-- queue before it, in the bucket of the complete). Otherwise stats_queue is migration 020's.

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
    ), keys AS (
        SELECT queue_id, b FROM per_visit UNION SELECT queue_id, b FROM turned_away
        UNION SELECT queue_id, b FROM before_queue UNION SELECT queue_id, b FROM passed_on
        UNION SELECT queue_id, b FROM called_back UNION SELECT queue_id, b FROM callback_talk
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
           coalesce(c.callbacks_failed, 0), stats_s(c.to_callback_ms)
      FROM keys k
      JOIN queues q ON q.id = k.queue_id
      LEFT JOIN per_visit v ON v.queue_id = k.queue_id AND v.b = k.b
      LEFT JOIN turned_away t ON t.queue_id = k.queue_id AND t.b = k.b
      LEFT JOIN before_queue r ON r.queue_id = k.queue_id AND r.b = k.b
      LEFT JOIN passed_on o ON o.queue_id = k.queue_id AND o.b = k.b
      LEFT JOIN passed_in i ON i.queue_id = k.queue_id AND i.b = k.b
      LEFT JOIN called_back c ON c.queue_id = k.queue_id AND c.b = k.b
      LEFT JOIN callback_talk ct ON ct.queue_id = k.queue_id AND ct.b = k.b
     ORDER BY q.name, k.b
$$;

CREATE VIEW stats_queue_today AS
    SELECT * FROM stats_queue(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');

---------------------------------------------------------------------------------------------------
-- Video to phone, not answered, is recorded (issue 17). A switch the daemon made to dial the
-- customer's phone (`hotline case switch --to phone`, the pages' buttons) names the number it
-- dialled (to_number; NULL: a switch link to video), and says how the dial ended: 'answered' (the
-- phone leg used the token), 'no_answer', 'busy' or 'failed', with Asterisk's hangup cause when
-- the phone's channel ended unanswered. NULL outcome: still ringing (or the daemon went before
-- it knew).
---------------------------------------------------------------------------------------------------
ALTER TABLE switches
    ADD COLUMN to_number text CHECK (to_number ~ '^\+[1-9][0-9]{6,14}$'),
    ADD COLUMN outcome text CHECK (outcome IN ('answered', 'no_answer', 'busy', 'failed')),
    ADD COLUMN outcome_at timestamptz,
    ADD COLUMN hangup_cause integer,
    ADD COLUMN hangup_cause_text text,
    ADD CHECK (outcome IS NULL OR to_number IS NOT NULL),
    ADD CHECK ((outcome IS NULL) = (outcome_at IS NULL));
