-- One case per contact, across calls: a customer who calls again (phone or video) within a window
-- after their last contact ended continues that case, as its next hop, instead of opening a new
-- one. A case still open is never joined this way: two calls at once from one number (an office's
-- switchboard) are two contacts; a customer's own second leg comes by the switch. Anonymous
-- callers never continue a case: their key says nothing about who they are.
--
-- The same as migration 007's open_case_with_hop, with the case looked up first. The customer's
-- latest case is locked while it reopens; a second call of the customer arriving at that moment
-- then finds it open, and opens a case of its own.
CREATE FUNCTION open_contact_hop(
    number_id bigint, line_limit integer, customer_key text, entered_at timestamptz, node text,
    channel_id text, channel_name text, channel_kind text, media text, dialled text,
    dialled_e164 text, caller_num text, caller_name text, hotline_id bigint,
    continue_within interval)
RETURNS SETOF hops
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    free_line integer;
    the_case bigint;
    next_seq integer := 1;
BEGIN
    IF open_contact_hop.number_id IS NOT NULL AND line_limit IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock(hashtext('hotline.number_lines'), open_contact_hop.number_id::integer);
        SELECT min(l) INTO free_line
          FROM generate_series(1, line_limit) AS l
         WHERE NOT EXISTS (SELECT 1 FROM hops h
                            WHERE h.number_id = open_contact_hop.number_id AND h.line = l
                              AND h.ended_at IS NULL);
        IF free_line IS NULL THEN
            RETURN;
        END IF;
    END IF;
    IF continue_within IS NOT NULL AND open_contact_hop.customer_key NOT LIKE 'anonymous:%' THEN
        SELECT c.id INTO the_case
          FROM cases c
         WHERE c.customer_key = open_contact_hop.customer_key
           AND c.status = 'closed' AND c.closed_at >= now() - continue_within
         ORDER BY c.opened_at DESC
         LIMIT 1
           FOR UPDATE;
    END IF;
    IF the_case IS NOT NULL THEN
        UPDATE cases SET status = 'open', closed_at = NULL WHERE id = the_case;
        SELECT max(h.seq) + 1 INTO next_seq FROM hops h WHERE h.case_id = the_case;
    ELSE
        INSERT INTO cases (customer_key, opened_at)
        VALUES (open_contact_hop.customer_key, coalesce(open_contact_hop.entered_at, now()))
        RETURNING id INTO the_case;
    END IF;
    RETURN QUERY
    INSERT INTO hops AS h (case_id, seq, node, channel_id, channel_name, channel_kind, media, dialled,
                           dialled_e164, caller_num, caller_name, entered_at, number_id, hotline_id, line)
    VALUES (the_case, coalesce(next_seq, 1), open_contact_hop.node, open_contact_hop.channel_id,
            open_contact_hop.channel_name, open_contact_hop.channel_kind, open_contact_hop.media,
            open_contact_hop.dialled, open_contact_hop.dialled_e164, open_contact_hop.caller_num,
            open_contact_hop.caller_name, coalesce(open_contact_hop.entered_at, now()),
            open_contact_hop.number_id, open_contact_hop.hotline_id, free_line)
    RETURNING h.*;
END
$$;
