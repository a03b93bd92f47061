-- Transfers (issue 17): an agent passes the customer to a queue or a hotline. The customer's leg
-- stays the same hop: a transfer is not a new leg but the end of one talk and a new visit on the
-- same hop. The hop's agent_id is its live talk's agent: a transfer clears it, the next answer
-- sets it; answered_at stays the first answer (the contact was answered then). The talk being left gets its `complete` (with its talk time) and a `transfer` queue
-- event (the agent, the target); the target queue's visit is an ordinary `join` on the same
-- hop, so that queue's offered, answered, ASA and service level count it like any caller. Each
-- transfer asked, done or refused, is one row here: who asked, when, blind or attended, from which
-- queue and agent, to which target, the outcome and why.
--   'transfer'  one row of transfers (its hop by id, or by channel for a hop written late).
-- stats_queue and stats_agent gain transferred_out and transferred_in (below).
CREATE TABLE transfers (
    id            bigserial PRIMARY KEY,
    request       text UNIQUE,  -- the asker's id for it (the CLI waits for its row); NULL: none
    case_id       bigint NOT NULL REFERENCES cases (id),
    hop_id        bigint NOT NULL REFERENCES hops (id),
    at            timestamptz NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('blind', 'attended')),
    asked_by      text NOT NULL CHECK (length(asked_by) BETWEEN 1 AND 64),
    from_queue_id bigint REFERENCES queues (id) ON DELETE SET NULL,
    from_agent_id bigint REFERENCES agents (id) ON DELETE SET NULL,
    target        text NOT NULL CHECK (length(target) BETWEEN 1 AND 200),
    outcome       text NOT NULL CHECK (outcome IN ('transferred', 'refused')),
    detail        text NOT NULL DEFAULT '' CHECK (length(detail) <= 500)
);
CREATE INDEX transfers_case_idx ON transfers (case_id);

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
        IF the_hop IS NULL AND r->>'k' IN ('event', 'digit', 'close', 'talk', 'transfer') THEN
            SELECT id, case_id INTO the_hop, case_of FROM hops
             WHERE node = r->>'node' AND channel_id = r->>'channel_id';
        END IF;
        CASE r->>'k'
        WHEN 'event' THEN
            INSERT INTO queue_events (at, queue_id, case_id, hop_id, agent_id, event, position, wait_ms,
                                      ring_ms, talk_ms, detail)
            VALUES (happened, (r->>'queue')::bigint, case_of, the_hop, (r->>'agent')::bigint,
                    r->>'event', (r->>'position')::integer, (r->>'wait_ms')::integer,
                    (r->>'ring_ms')::integer, (r->>'talk_ms')::integer, coalesce(r->>'detail', ''));
            IF r->>'event' = 'join' THEN
                UPDATE hops SET queue_id = (r->>'queue')::bigint, queued_at = happened WHERE id = the_hop;
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
        END CASE;  -- any other "k": CASE_NOT_FOUND, and the batch is written record by record
    END LOOP;
    RETURN closed;
END
$$;

---------------------------------------------------------------------------------------------------
-- Statistics: per queue and per agent, `transferred_out` (talks passed on: the queue's `transfer`
-- events, the agent's own) and `transferred_in` (a queue's visits a transfer began, in the bucket
-- of their join; an agent's answers of such visits). Otherwise as migration 005 made them; their
-- today views are made again with them.
---------------------------------------------------------------------------------------------------
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
               transferred_out bigint, transferred_in bigint)
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
    ), keys AS (
        SELECT queue_id, b FROM per_visit UNION SELECT queue_id, b FROM turned_away
        UNION SELECT queue_id, b FROM before_queue UNION SELECT queue_id, b FROM passed_on
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
           coalesce(o.transferred_out, 0), coalesce(i.transferred_in, 0)
      FROM keys k
      JOIN queues q ON q.id = k.queue_id
      LEFT JOIN per_visit v ON v.queue_id = k.queue_id AND v.b = k.b
      LEFT JOIN turned_away t ON t.queue_id = k.queue_id AND t.b = k.b
      LEFT JOIN before_queue r ON r.queue_id = k.queue_id AND r.b = k.b
      LEFT JOIN passed_on o ON o.queue_id = k.queue_id AND o.b = k.b
      LEFT JOIN passed_in i ON i.queue_id = k.queue_id AND i.b = k.b
     ORDER BY q.name, k.b
$$;

CREATE FUNCTION stats_agent(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
                            tz text DEFAULT current_setting('TimeZone'))
RETURNS TABLE (agent_id bigint, agent text, bucket_start timestamptz, bucket_end timestamptz,
               rung bigint, answered bigint, missed bigint, completed bigint,
               talk_s integer, wrapup_s integer, aht_s integer, logged_in_s integer, paused_s integer,
               pause_by_reason jsonb, occupancy_pct numeric,
               transferred_out bigint, transferred_in bigint)
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
    ), keys AS (
        SELECT agent_id, b FROM calls UNION SELECT agent_id, b FROM logged WHERE ms > 0
    )
    SELECT a.id, a.name::text, k.b, stats_bucket_end(k.b, since, until, bucket, tz),
           coalesce(c.rung, 0), coalesce(c.answered, 0), coalesce(c.missed, 0), coalesce(c.completed, 0),
           coalesce(stats_s(c.talk_ms), 0), coalesce(stats_s(c.wrapup_ms), 0),
           stats_s((c.talk_ms + c.wrapup_ms) / nullif(c.completed, 0)),
           coalesce(stats_s(l.ms), 0), coalesce(stats_s(p.ms), 0), coalesce(p.by_reason, '{}'),
           stats_pct((coalesce(c.talk_ms, 0) + coalesce(c.wrapup_ms, 0)), l.ms - coalesce(p.ms, 0)),
           coalesce(c.transferred_out, 0), coalesce(c.transferred_in, 0)
      FROM keys k
      JOIN agents a ON a.id = k.agent_id
      LEFT JOIN calls c ON c.agent_id = k.agent_id AND c.b = k.b
      LEFT JOIN logged l ON l.agent_id = k.agent_id AND l.b = k.b
      LEFT JOIN paused p ON p.agent_id = k.agent_id AND p.b = k.b
     ORDER BY a.name, k.b
$$;

CREATE VIEW stats_queue_today AS
    SELECT * FROM stats_queue(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');
CREATE VIEW stats_agent_today AS
    SELECT * FROM stats_agent(date_trunc('day', now()), date_trunc('day', now()) + interval '1 day');
