-- Supervisor statistics (issue 5): the figures of app_queue / QueueMetrics as SQL functions over
-- raw `queue_events` and `hops`, so Grafana, Metabase, psql and `hotline stats` read the same
-- numbers; and the live snapshot the daemon keeps current (`queue_live`, `agent_live`).
--
-- Every function takes a range [since, until), an optional bucket (NULL: one row for the whole
-- range) and a time zone the buckets are laid out in (wall-clock: a day bucket is a local day,
-- 23 or 25 hours on a DST change). Rows are sparse: a bucket with no activity has no row.
-- Seconds are rounded to integers and percentages to one decimal, as supervisors read them;
-- the raw milliseconds stay in queue_events for anyone who needs more. Definitions of every
-- column are in the README (Statistics).
--
-- The queries start from the small provisioning tables and reach the big ones through their
-- indexes (queue_events (queue_id, at), (agent_id, at), (hop_id); hops (entered_at), (case_id)),
-- so a day costs what that day holds, whatever the history.

-- Where a moment falls: the start of its bucket, buckets laid out from local midnight of `since`
-- in the time zone `tz`, clipped to `since`; `since` itself when bucket is NULL.
CREATE FUNCTION stats_bucket_of(at timestamptz, since timestamptz, bucket interval, tz text)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN bucket IS NULL THEN since
                ELSE greatest(since, date_bin(bucket, at AT TIME ZONE tz,
                                              date_trunc('day', since AT TIME ZONE tz)) AT TIME ZONE tz)
           END
$$;

-- The end of the bucket that starts at `bucket_start` (as stats_bucket_of gives it), clipped to `until`.
CREATE FUNCTION stats_bucket_end(bucket_start timestamptz, since timestamptz, until timestamptz,
                                 bucket interval, tz text)
RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN bucket IS NULL THEN until
                ELSE least(until, (date_bin(bucket, bucket_start AT TIME ZONE tz,
                                            date_trunc('day', since AT TIME ZONE tz))
                                   + bucket) AT TIME ZONE tz)
           END
$$;

-- Every bucket of the range, for figures that are intervals (logged-in and pause time).
CREATE FUNCTION stats_buckets(since timestamptz, until timestamptz, bucket interval, tz text)
RETURNS TABLE (bucket_start timestamptz, bucket_end timestamptz)
LANGUAGE sql STABLE AS $$
    SELECT stats_bucket_of(b, since, bucket, tz), stats_bucket_end(b, since, until, bucket, tz)
      FROM (SELECT since AS b WHERE bucket IS NULL
            UNION ALL
            SELECT s AT TIME ZONE tz
              FROM generate_series(date_bin(bucket, since AT TIME ZONE tz,
                                            date_trunc('day', since AT TIME ZONE tz)),
                                   until AT TIME ZONE tz, bucket) AS s
             WHERE bucket IS NOT NULL AND s AT TIME ZONE tz < until) AS starts
     WHERE since < until
$$;

CREATE FUNCTION stats_pct(part numeric, whole numeric)
RETURNS numeric LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT round(100 * part / nullif(whole, 0), 1)
$$;

CREATE FUNCTION stats_s(ms numeric)
RETURNS integer LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT round(ms / 1000)::integer
$$;

---------------------------------------------------------------------------------------------------
-- One visit of a caller to a queue: its join and what ended it (the first answer, abandon,
-- overflow or exit_key of the same hop in the same queue after the join and before any next join),
-- and the talk of the complete that followed an answer. The building block of the per-queue figures.
---------------------------------------------------------------------------------------------------
CREATE FUNCTION stats_queue_visits(since timestamptz, until timestamptz)
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
              FROM (SELECT n.*, n.event IN ('answer', 'abandon', 'overflow', 'exit_key') AS ends
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

---------------------------------------------------------------------------------------------------
-- Per queue. A call counts in the bucket of its join (QueueMetrics does the same), whenever it
-- was answered or ended. busy and closed are refusals before any queue: they are counted for the
-- queue that is the entry of the hop's hotline (hotlines whose entry is a menu have them only in
-- stats_hotline).
---------------------------------------------------------------------------------------------------
CREATE FUNCTION stats_queue(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
                            short_abandon_s integer DEFAULT 5,
                            tz text DEFAULT current_setting('TimeZone'))
RETURNS TABLE (queue_id bigint, queue text, bucket_start timestamptz, bucket_end timestamptz,
               offered bigint, answered bigint, answered_in_sl bigint, abandoned bigint,
               short_abandons bigint, abandoned_in_sl bigint, overflowed bigint, exited bigint,
               refused bigint, failed bigint, waiting bigint, busy bigint, closed bigint,
               service_level_pct numeric, sl_answered_pct numeric, sl_offered_pct numeric,
               abandon_rate_pct numeric, asa_s integer, avg_wait_s integer, max_wait_s integer,
               avg_talk_s integer, aht_s integer, sl_threshold_s integer)
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
    ), keys AS (
        SELECT queue_id, b FROM per_visit UNION SELECT queue_id, b FROM turned_away
        UNION SELECT queue_id, b FROM before_queue
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
           stats_s(v.avg_talk_ms), stats_s(v.aht_ms), q.service_level_s
      FROM keys k
      JOIN queues q ON q.id = k.queue_id
      LEFT JOIN per_visit v ON v.queue_id = k.queue_id AND v.b = k.b
      LEFT JOIN turned_away t ON t.queue_id = k.queue_id AND t.b = k.b
      LEFT JOIN before_queue r ON r.queue_id = k.queue_id AND r.b = k.b
     ORDER BY q.name, k.b
$$;

---------------------------------------------------------------------------------------------------
-- Per agent, across queues. Events count in the bucket they happened in (a complete carries its
-- talk, like app_queue's COMPLETE line); logged-in and pause time are split across buckets.
-- missed leaves out rings that ended because the caller hung up or left with a key, the dial failed
-- (the phone never rang), or another agent answered the same ring (ringall: the detail says
-- 'answered by ...', and engines before that detail wrote an answer right after).
---------------------------------------------------------------------------------------------------
CREATE FUNCTION stats_agent(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
                            tz text DEFAULT current_setting('TimeZone'))
RETURNS TABLE (agent_id bigint, agent text, bucket_start timestamptz, bucket_end timestamptz,
               rung bigint, answered bigint, missed bigint, completed bigint,
               talk_s integer, wrapup_s integer, aht_s integer, logged_in_s integer, paused_s integer,
               pause_by_reason jsonb, occupancy_pct numeric)
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
               END AS next_event
          FROM agents a
          JOIN queue_events e ON e.agent_id = a.id AND e.at >= since AND e.at < until
                             AND e.event IN ('ring', 'ring_noanswer', 'answer', 'complete')
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
    ), keys AS (
        SELECT agent_id, b FROM calls UNION SELECT agent_id, b FROM logged WHERE ms > 0
    )
    SELECT a.id, a.name::text, k.b, stats_bucket_end(k.b, since, until, bucket, tz),
           coalesce(c.rung, 0), coalesce(c.answered, 0), coalesce(c.missed, 0), coalesce(c.completed, 0),
           coalesce(stats_s(c.talk_ms), 0), coalesce(stats_s(c.wrapup_ms), 0),
           stats_s((c.talk_ms + c.wrapup_ms) / nullif(c.completed, 0)),
           coalesce(stats_s(l.ms), 0), coalesce(stats_s(p.ms), 0), coalesce(p.by_reason, '{}'),
           stats_pct((coalesce(c.talk_ms, 0) + coalesce(c.wrapup_ms, 0)), l.ms - coalesce(p.ms, 0))
      FROM keys k
      JOIN agents a ON a.id = k.agent_id
      LEFT JOIN calls c ON c.agent_id = k.agent_id AND c.b = k.b
      LEFT JOIN logged l ON l.agent_id = k.agent_id AND l.b = k.b
      LEFT JOIN paused p ON p.agent_id = k.agent_id AND p.b = k.b
     ORDER BY a.name, k.b
$$;

---------------------------------------------------------------------------------------------------
-- Per hotline and per number: every leg (hop) in the bucket it entered, by how it ended.
---------------------------------------------------------------------------------------------------
CREATE FUNCTION stats_hotline(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
                              tz text DEFAULT current_setting('TimeZone'))
RETURNS TABLE (hotline_id bigint, hotline text, bucket_start timestamptz, bucket_end timestamptz,
               calls bigint, answered bigint, completed bigint, abandoned bigint, busy bigint,
               closed bigint, overflowed bigint, failed bigint, switched bigint, transferred bigint,
               in_progress bigint, answered_pct numeric, avg_answer_s integer, max_answer_s integer)
LANGUAGE sql STABLE AS $$
    SELECT hl.id, hl.name::text, h.b, stats_bucket_end(h.b, since, until, bucket, tz),
           count(*), count(h.answered_at),
           count(*) FILTER (WHERE h.end_reason = 'completed'),
           count(*) FILTER (WHERE h.end_reason = 'abandoned'),
           count(*) FILTER (WHERE h.end_reason = 'busy'),
           count(*) FILTER (WHERE h.end_reason = 'closed'),
           count(*) FILTER (WHERE h.end_reason = 'overflow'),
           count(*) FILTER (WHERE h.end_reason = 'failed'),
           count(*) FILTER (WHERE h.end_reason = 'switched'),
           count(*) FILTER (WHERE h.end_reason = 'transferred'),
           count(*) FILTER (WHERE h.end_reason IS NULL),
           stats_pct(count(h.answered_at), count(*)),
           stats_s(avg(h.answer_ms)), stats_s(max(h.answer_ms))
      FROM hotlines hl
      JOIN LATERAL (
            SELECT x.*, stats_bucket_of(x.entered_at, since, bucket, tz) AS b,
                   extract(epoch FROM x.answered_at - x.entered_at) * 1000 AS answer_ms
              FROM hops x
             WHERE x.hotline_id = hl.id AND x.entered_at >= since AND x.entered_at < until) h ON true
     GROUP BY hl.id, h.b
     ORDER BY hl.name, h.b
$$;

CREATE FUNCTION stats_number(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
                             tz text DEFAULT current_setting('TimeZone'))
RETURNS TABLE (number_id bigint, number text, kind text, hotline text, line_limit integer,
               bucket_start timestamptz, bucket_end timestamptz,
               calls bigint, answered bigint, abandoned bigint, busy bigint, closed bigint, failed bigint,
               busy_pct numeric, peak_lines integer)
LANGUAGE sql STABLE AS $$
    SELECT n.id, n.number, n.kind, hl.name::text, n.line_limit,
           h.b, stats_bucket_end(h.b, since, until, bucket, tz),
           count(*), count(h.answered_at),
           count(*) FILTER (WHERE h.end_reason = 'abandoned'),
           count(*) FILTER (WHERE h.end_reason = 'busy'),
           count(*) FILTER (WHERE h.end_reason = 'closed'),
           count(*) FILTER (WHERE h.end_reason = 'failed'),
           stats_pct(count(*) FILTER (WHERE h.end_reason = 'busy'), count(*)),
           max(h.line)
      FROM (SELECT x.number_id, x.answered_at, x.end_reason, x.line,
                   stats_bucket_of(x.entered_at, since, bucket, tz) AS b
              FROM hops x WHERE x.entered_at >= since AND x.entered_at < until AND x.number_id IS NOT NULL) h
      JOIN numbers n ON n.id = h.number_id
      JOIN hotlines hl ON hl.id = n.hotline_id
     GROUP BY n.id, hl.name, h.b
     ORDER BY hl.name, n.number, h.b
$$;

---------------------------------------------------------------------------------------------------
-- Per channel kind and media, and per case (the customer's view across legs).
---------------------------------------------------------------------------------------------------
CREATE FUNCTION stats_channel(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
                              tz text DEFAULT current_setting('TimeZone'))
RETURNS TABLE (channel_kind text, media text, bucket_start timestamptz, bucket_end timestamptz,
               calls bigint, cases bigint, answered bigint, abandoned bigint, busy bigint,
               switched bigint, avg_answer_s integer)
LANGUAGE sql STABLE AS $$
    SELECT h.channel_kind, h.media, h.b, stats_bucket_end(h.b, since, until, bucket, tz),
           count(*), count(DISTINCT h.case_id), count(h.answered_at),
           count(*) FILTER (WHERE h.end_reason = 'abandoned'),
           count(*) FILTER (WHERE h.end_reason = 'busy'),
           count(*) FILTER (WHERE h.end_reason = 'switched'),
           stats_s(avg(extract(epoch FROM h.answered_at - h.entered_at) * 1000))
      FROM (SELECT x.*, stats_bucket_of(x.entered_at, since, bucket, tz) AS b
              FROM hops x WHERE x.entered_at >= since AND x.entered_at < until) h
     GROUP BY h.channel_kind, h.media, h.b
     ORDER BY h.channel_kind, h.media, h.b
$$;

-- One row per case opened in the range: its legs, whether the customer switched channel (legs of
-- more than one channel kind or media, or a leg ended 'switched'), and the first answer of any leg.
CREATE FUNCTION stats_case_list(since timestamptz, until timestamptz)
RETURNS TABLE (case_id bigint, customer_key text, opened_at timestamptz, closed_at timestamptz,
               hops bigint, channel_kinds text[], media text[], switched boolean,
               first_answered_at timestamptz, first_answer_s integer)
LANGUAGE sql STABLE AS $$
    SELECT c.id, c.customer_key, c.opened_at, c.closed_at, h.hops, h.kinds, h.media,
           coalesce(h.kind_count > 1 OR h.media_count > 1 OR h.any_switched, false),
           h.first_answered_at,
           stats_s(extract(epoch FROM h.first_answered_at - c.opened_at) * 1000)
      FROM cases c
      CROSS JOIN LATERAL (
            SELECT count(*) AS hops,
                   array_agg(DISTINCT x.channel_kind) AS kinds, array_agg(DISTINCT x.media) AS media,
                   count(DISTINCT x.channel_kind) AS kind_count, count(DISTINCT x.media) AS media_count,
                   bool_or(x.end_reason = 'switched') AS any_switched,
                   min(x.answered_at) AS first_answered_at
              FROM hops x WHERE x.case_id = c.id) h
     WHERE c.opened_at >= since AND c.opened_at < until
     ORDER BY c.opened_at, c.id
$$;

CREATE FUNCTION stats_case(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
                           tz text DEFAULT current_setting('TimeZone'))
RETURNS TABLE (bucket_start timestamptz, bucket_end timestamptz, cases bigint, hops bigint,
               hops_per_case numeric, multi_hop_cases bigint, switched_cases bigint,
               answered_cases bigint, avg_first_answer_s integer, max_first_answer_s integer)
LANGUAGE sql STABLE AS $$
    SELECT c.b, stats_bucket_end(c.b, since, until, bucket, tz),
           count(*), sum(c.hops)::bigint, round(avg(c.hops), 1),
           count(*) FILTER (WHERE c.hops > 1), count(*) FILTER (WHERE c.switched),
           count(c.first_answered_at),
           stats_s(avg(extract(epoch FROM c.first_answered_at - c.opened_at) * 1000)),
           stats_s(max(extract(epoch FROM c.first_answered_at - c.opened_at) * 1000))
      FROM (SELECT l.*, stats_bucket_of(l.opened_at, since, bucket, tz) AS b
              FROM stats_case_list(since, until) l) c
     GROUP BY c.b
     ORDER BY c.b
$$;

CREATE INDEX cases_opened_idx ON cases (opened_at);

---------------------------------------------------------------------------------------------------
-- Today (midnight to midnight in the session's TimeZone: SET TIME ZONE 'Europe/Moscow' first when
-- the server runs in UTC), for dashboards that want a plain relation.
---------------------------------------------------------------------------------------------------
CREATE VIEW stats_queue_today AS
    SELECT * FROM stats_queue(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');
CREATE VIEW stats_agent_today AS
    SELECT * FROM stats_agent(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');
CREATE VIEW stats_hotline_today AS
    SELECT * FROM stats_hotline(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');

---------------------------------------------------------------------------------------------------
-- Live state, kept current by the daemon (hotline/store/live_state.py publishes and NOTIFYs
-- hotline_live). Waits are stored as the moment they began, so they advance without writes.
---------------------------------------------------------------------------------------------------
CREATE TABLE queue_live (
    queue_id               bigint PRIMARY KEY REFERENCES queues (id) ON DELETE CASCADE,
    waiting                integer NOT NULL DEFAULT 0 CHECK (waiting >= 0),
    longest_waiting_since  timestamptz,
    agents_free            integer NOT NULL DEFAULT 0 CHECK (agents_free >= 0),
    agents_ringing         integer NOT NULL DEFAULT 0 CHECK (agents_ringing >= 0),
    agents_busy            integer NOT NULL DEFAULT 0 CHECK (agents_busy >= 0),
    agents_wrapup          integer NOT NULL DEFAULT 0 CHECK (agents_wrapup >= 0),
    agents_paused          integer NOT NULL DEFAULT 0 CHECK (agents_paused >= 0),
    agents_logged_out      integer NOT NULL DEFAULT 0 CHECK (agents_logged_out >= 0),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CHECK ((waiting = 0) = (longest_waiting_since IS NULL))
);

CREATE TABLE agent_live (
    agent_id    bigint PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    state       text NOT NULL
        CHECK (state IN ('free', 'ringing', 'busy', 'wrapup', 'paused', 'logged_out', 'unreachable')),
    since       timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE VIEW queue_live_now AS
    SELECT q.id AS queue_id, q.name::text AS queue, l.waiting,
           CASE WHEN l.longest_waiting_since IS NOT NULL
                THEN greatest(0, floor(extract(epoch FROM now() - l.longest_waiting_since)))::integer
           END AS longest_wait_s,
           l.agents_free, l.agents_ringing, l.agents_busy, l.agents_wrapup, l.agents_paused,
           l.agents_logged_out, l.updated_at
      FROM queue_live l JOIN queues q ON q.id = l.queue_id
     WHERE q.retired_at IS NULL;

CREATE VIEW agent_live_now AS
    SELECT a.id AS agent_id, a.name::text AS agent, l.state, l.since,
           greatest(0, floor(extract(epoch FROM now() - l.since)))::integer AS in_state_s, l.updated_at
      FROM agent_live l JOIN agents a ON a.id = l.agent_id
     WHERE a.retired_at IS NULL;
