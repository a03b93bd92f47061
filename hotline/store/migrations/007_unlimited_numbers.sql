-- A leg on a number with unlimited lines takes no line. Finding "the lowest free line" of such
-- a number meant, for every new leg, a scan proportional to its live legs under a per-number lock
-- (0.5 ms of database CPU per call at 180 live legs, and under overload legs waited on each other);
-- the line it gave was only ever read as a statistic. Numbers with a line limit keep their lines:
-- the limit is what a line is for.
CREATE OR REPLACE FUNCTION open_case_with_hop(
    number_id bigint, line_limit integer, customer_key text, entered_at timestamptz, node text,
    channel_id text, channel_name text, channel_kind text, media text, dialled text,
    dialled_e164 text, caller_num text, caller_name text, hotline_id bigint)
RETURNS SETOF hops
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    free_line integer;
    new_case bigint;
BEGIN
    -- Legs of one limited number take their line one at a time (a transaction-scoped advisory
    -- lock on the number), each statement seeing what the previous holder committed.
    IF open_case_with_hop.number_id IS NOT NULL AND line_limit IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('hotline.number_lines'), open_case_with_hop.number_id::integer);
        SELECT min(l) INTO free_line
          FROM generate_series(1, line_limit) AS l
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

-- The most legs a number held at once, when a leg of the bucket arrived: a sweep over the legs'
-- arrivals (+1) and ends (-1) in time order, ends first at the same instant. Legs refused busy
-- never held a line. Legs that arrived up to a day before `since` and were still up count in
-- the first bucket. Before, this was the highest line taken, which numbers with unlimited lines
-- no longer take; for a limited number both give the same figure.
CREATE FUNCTION stats_number_peaks(since timestamptz, until timestamptz, bucket interval, tz text)
RETURNS TABLE (number_id bigint, bucket_start timestamptz, peak_lines integer)
LANGUAGE sql STABLE AS $$
    WITH legs AS (
        SELECT x.number_id, x.entered_at, coalesce(x.ended_at, 'infinity') AS ended_at
          FROM hops x
         WHERE x.number_id IS NOT NULL AND x.end_reason IS DISTINCT FROM 'busy'
           AND x.entered_at >= since - interval '1 day' AND x.entered_at < until
           AND coalesce(x.ended_at, 'infinity') > since
    ), steps AS (
        SELECT l.number_id, l.entered_at AS at, 1 AS step FROM legs l
        UNION ALL
        SELECT l.number_id, l.ended_at, -1 FROM legs l WHERE l.ended_at < until
    ), held AS (
        SELECT s.number_id, s.at, s.step,
               sum(s.step) OVER (PARTITION BY s.number_id ORDER BY s.at, s.step
                                 ROWS UNBOUNDED PRECEDING) AS legs_up
          FROM steps s
    )
    SELECT h.number_id, stats_bucket_of(h.at, since, bucket, tz), max(h.legs_up)::integer
      FROM held h
     WHERE h.step = 1 AND h.at >= since
     GROUP BY 1, 2
$$;

CREATE OR REPLACE FUNCTION stats_number(since timestamptz, until timestamptz, bucket interval DEFAULT NULL,
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
           max(p.peak_lines)
      FROM (SELECT x.number_id, x.answered_at, x.end_reason,
                   stats_bucket_of(x.entered_at, since, bucket, tz) AS b
              FROM hops x WHERE x.entered_at >= since AND x.entered_at < until AND x.number_id IS NOT NULL) h
      JOIN numbers n ON n.id = h.number_id
      JOIN hotlines hl ON hl.id = n.hotline_id
      LEFT JOIN stats_number_peaks(since, until, bucket, tz) p
             ON p.number_id = h.number_id AND p.bucket_start = h.b
     GROUP BY n.id, hl.name, h.b
     ORDER BY hl.name, n.number, h.b
$$;
