-- The contact-event stream and webhooks (issue 18): an outbox in PostgreSQL.
--
-- contact_events: every step of a contact, one row each, written by AFTER triggers on the rows
-- the steps already write (cases, hops, queue_events, transfers, switches, callbacks), so in the
-- same transaction as those rows: no event exists without its row, none is lost with a daemon,
-- and the call's task never waits for one (its records go through the write-behind, whose batch
-- fires these triggers). Each event locks its case's row first (FOR NO KEY UPDATE, what an UPDATE
-- of the case takes anyway), so two transactions writing one case's steps commit their events in
-- id order: id order is the order of a case's events, for the deliverer and for any reader. (The
-- case row, not an advisory lock: the writers that reopen or close a case lock that row already,
-- and one lock taken in one order cannot deadlock with itself.)
--   kind     case_opened, case_reopened, entered_hotline, menu_key, queued, ringing_agent,
--            ring_no_answer, answered, abandoned, overflowed, exited_queue, talk_ended, transfer,
--            switch_requested, switched, callback_requested, callback_placed, callback_ended,
--            ended, case_closed (hotline.store.contact_events.KINDS)
--   at       when it happened (the record's own time; a menu key: when it was written)
--   hotline, queue, agent  names (not ids: a receiver reads them, and they survive a retire)
--   data     what else the kind says (hotline.store.contact_events documents each)
--
-- webhooks: a URL that gets the events as signed POSTs; secret is the HMAC key (kept as given:
-- signing needs it; never printed back by the CLI); hotlines / events NULL: all of them.
-- webhook_deliveries: one row per event per webhook that wants it, made by a trigger on
-- contact_events in the same transaction (a webhook gets the events written after it was added).
-- A deliverer claims the head of each (webhook, case) line, the lowest pending event id, with
-- FOR UPDATE SKIP LOCKED and a lease (claimed_by, lease_until), so two daemons never post the
-- same delivery at once and a dead daemon's claim comes back when its lease runs out; a failed
-- POST sets next_try_at (backoff) and holds back only that case's later events for that URL;
-- after the last attempt the row is 'failed' and the line moves on.

CREATE TABLE contact_events (
    id        bigserial PRIMARY KEY,
    case_id   bigint NOT NULL REFERENCES cases (id),
    hop_id    bigint REFERENCES hops (id),
    kind      text NOT NULL,
    at        timestamptz NOT NULL,
    hotline   text,
    queue     text,
    agent     text,
    data      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX contact_events_case_idx ON contact_events (case_id, id);

CREATE TABLE webhooks (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               slug NOT NULL UNIQUE,
    url                text NOT NULL CHECK (url ~ '^https?://[^/?#[:space:]]+' AND length(url) <= 2000),
    secret             text NOT NULL CHECK (length(secret) BETWEEN 16 AND 200),
    hotlines           text[] CHECK (cardinality(hotlines) > 0),
    events             text[] CHECK (cardinality(events) > 0),
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_delivered_at  timestamptz,
    last_error         text,
    last_error_at      timestamptz
);

CREATE TABLE webhook_deliveries (
    webhook_id    bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id      bigint NOT NULL REFERENCES contact_events (id),
    case_id       bigint NOT NULL,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts      integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_try_at   timestamptz NOT NULL DEFAULT now(),
    claimed_by    text,
    lease_until   timestamptz,
    last_error    text,
    delivered_at  timestamptz,
    PRIMARY KEY (webhook_id, event_id),
    CHECK ((claimed_by IS NULL) = (lease_until IS NULL)),
    CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);
-- the lines: pending deliveries per webhook and case, in event order
CREATE INDEX webhook_deliveries_line_idx ON webhook_deliveries (webhook_id, case_id, event_id)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_try_at) WHERE status = 'pending';

---------------------------------------------------------------------------------------------------
-- Writing an event
---------------------------------------------------------------------------------------------------

CREATE FUNCTION queue_name(the_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT name::text FROM queues WHERE id = the_id $$;

CREATE FUNCTION agent_name(the_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT name::text FROM agents WHERE id = the_id $$;

CREATE FUNCTION hotline_name(the_id bigint) RETURNS text
LANGUAGE sql STABLE AS $$ SELECT name::text FROM hotlines WHERE id = the_id $$;

-- The hotline of a case's event that has no hop: its latest hop's
CREATE FUNCTION case_hotline(the_case bigint) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT hotline_name(hotline_id) FROM hops WHERE case_id = the_case ORDER BY seq DESC LIMIT 1
$$;

CREATE FUNCTION add_contact_event(the_case bigint, the_hop bigint, the_kind text, happened timestamptz,
                                  the_hotline text, the_queue text, the_agent text, the_data jsonb)
RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    -- one writer of a case's events at a time, until commit: ids in commit order per case
    PERFORM 1 FROM cases WHERE id = the_case FOR NO KEY UPDATE;
    INSERT INTO contact_events (case_id, hop_id, kind, at, hotline, queue, agent, data)
    VALUES (the_case, the_hop, the_kind, coalesce(happened, now()), the_hotline, the_queue, the_agent,
            jsonb_strip_nulls(coalesce(the_data, '{}')))
    RETURNING id INTO new_id;
    INSERT INTO webhook_deliveries (webhook_id, event_id, case_id)
    SELECT w.id, new_id, the_case FROM webhooks w
     WHERE (w.hotlines IS NULL OR the_hotline = ANY (w.hotlines))
       AND (w.events IS NULL OR the_kind = ANY (w.events));
END
$$;

---------------------------------------------------------------------------------------------------
-- The triggers: one per table of steps
---------------------------------------------------------------------------------------------------

CREATE FUNCTION contact_events_of_hop() RETURNS trigger
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
            jsonb_build_object('key', substr(NEW.ivr_path, length(OLD.ivr_path) + 1), 'path', NEW.ivr_path));
    END IF;
    IF OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL THEN
        PERFORM add_contact_event(NEW.case_id, NEW.id, 'ended', NEW.ended_at, hl, q, a,
            jsonb_build_object('reason', NEW.end_reason, 'cause', NEW.hangup_cause,
                               'cause_text', NEW.hangup_cause_text));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER hops_contact_events AFTER INSERT OR UPDATE OF ivr_path, ended_at ON hops
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_hop();

CREATE FUNCTION contact_events_of_case() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status = 'open' AND NEW.status = 'closed' THEN
        PERFORM add_contact_event(NEW.id, NULL, 'case_closed', NEW.closed_at, case_hotline(NEW.id), NULL,
                                  agent_name(NEW.last_agent_id), '{}');
    ELSIF OLD.status = 'closed' AND NEW.status = 'open' THEN
        PERFORM add_contact_event(NEW.id, NULL, 'case_reopened', now(), case_hotline(NEW.id), NULL,
                                  agent_name(NEW.last_agent_id), '{}');
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER cases_contact_events AFTER UPDATE OF status ON cases
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_case();

-- queue_events' own 'transfer' is left out: the transfers row says more (contact_events_of_transfer)
CREATE FUNCTION contact_events_of_queue_event() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    the_kind text := CASE NEW.event WHEN 'join' THEN 'queued' WHEN 'ring' THEN 'ringing_agent'
                         WHEN 'ring_noanswer' THEN 'ring_no_answer' WHEN 'answer' THEN 'answered'
                         WHEN 'abandon' THEN 'abandoned' WHEN 'overflow' THEN 'overflowed'
                         WHEN 'exit_key' THEN 'exited_queue' WHEN 'complete' THEN 'talk_ended' END;
BEGIN
    IF the_kind IS NOT NULL THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, the_kind, NEW.at,
            (SELECT hotline_name(hotline_id) FROM hops WHERE id = NEW.hop_id),
            queue_name(NEW.queue_id), agent_name(NEW.agent_id),
            jsonb_build_object('position', NEW.position, 'wait_ms', NEW.wait_ms, 'ring_ms', NEW.ring_ms,
                               'talk_ms', NEW.talk_ms, 'detail', nullif(NEW.detail, ''),
                               'priority', NEW.priority));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER queue_events_contact_events AFTER INSERT ON queue_events
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_queue_event();

CREATE FUNCTION contact_events_of_transfer() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'transfer', NEW.at,
        (SELECT hotline_name(hotline_id) FROM hops WHERE id = NEW.hop_id),
        queue_name(NEW.from_queue_id), agent_name(NEW.from_agent_id),
        jsonb_build_object('transfer_id', NEW.id, 'type', NEW.kind, 'asked_by', NEW.asked_by,
                           'target', NEW.target, 'outcome', NEW.outcome, 'detail', nullif(NEW.detail, '')));
    RETURN NULL;
END
$$;
CREATE TRIGGER transfers_contact_events AFTER INSERT ON transfers
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_transfer();

CREATE FUNCTION contact_events_of_switch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM add_contact_event(NEW.case_id, NEW.from_hop_id, 'switch_requested', NEW.issued_at,
            case_hotline(NEW.case_id), NULL, NULL,
            jsonb_build_object('switch_id', NEW.id, 'requested_by', NEW.requested_by,
                               'to', CASE WHEN NEW.to_number IS NULL THEN 'video' ELSE 'phone' END));
    ELSIF OLD.used_at IS NULL AND NEW.used_at IS NOT NULL THEN
        PERFORM add_contact_event(NEW.case_id, NEW.to_hop_id, 'switched', NEW.used_at,
            case_hotline(NEW.case_id), NULL, NULL,
            jsonb_build_object('switch_id', NEW.id, 'from_hop', NEW.from_hop_id,
                               'to', CASE WHEN NEW.to_number IS NULL THEN 'video' ELSE 'phone' END));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER switches_contact_events AFTER INSERT OR UPDATE OF used_at ON switches
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_switch();

CREATE FUNCTION contact_events_of_callback() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hl text := (SELECT hotline_name(hotline_id) FROM hops WHERE id = NEW.hop_id);
    body jsonb := jsonb_build_object('callback_id', NEW.id, 'number', NEW.number, 'attempts', NEW.attempts);
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'callback_requested', NEW.requested_at, hl,
                                  queue_name(NEW.queue_id), NULL, body);
    ELSIF OLD.status <> 'placing' AND NEW.status = 'placing' THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'callback_placed', now(), hl,
                                  queue_name(NEW.queue_id), NULL, body || jsonb_build_object('attempt', NEW.attempts + 1));
    ELSIF OLD.ended_at IS NULL AND NEW.ended_at IS NOT NULL THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'callback_ended', NEW.ended_at, hl,
                                  queue_name(NEW.queue_id), NULL,
                                  body || jsonb_build_object('outcome', NEW.status, 'detail', nullif(NEW.detail, '')));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER callbacks_contact_events AFTER INSERT OR UPDATE OF status ON callbacks
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_callback();
