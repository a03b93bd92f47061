-- The contact-event stream (migration 029) gets the last steps of a contact that had rows but no
-- events, and an outbox that does not grow for ever:
--   media_changed   a browser's camera turned on or off (a row of media_changes, migration 023):
--                   data {"media": "video"|"audio"}
--   switch_failed   a switch to the phone whose dial ended unanswered (switches.outcome, migration
--                   026: no_answer, busy or failed, with Asterisk's hangup cause); an answered
--                   one is `switched`, as before
-- Pruning (`hotline events purge`, and the daemon itself once an hour when event_retention is set)
-- deletes events older than the retention that no webhook still has to deliver, with their
-- delivered or failed deliveries. Two indexes make it cheap: a BRIN index on the time (events are
-- written in time order, so a few pages of index cover millions of rows, nearly free to keep up),
-- and webhook_deliveries by event, which deleting an event needs for its foreign key anyway.

CREATE INDEX contact_events_at_brin ON contact_events USING brin (at);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (event_id);

CREATE FUNCTION contact_events_of_media_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'media_changed', NEW.at,
        (SELECT hotline_name(hotline_id) FROM hops WHERE id = NEW.hop_id),
        (SELECT queue_name(queue_id) FROM hops WHERE id = NEW.hop_id),
        (SELECT agent_name(agent_id) FROM hops WHERE id = NEW.hop_id),
        jsonb_build_object('media', NEW.media));
    RETURN NULL;
END
$$;
CREATE TRIGGER media_changes_contact_events AFTER INSERT ON media_changes
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_media_change();

CREATE OR REPLACE FUNCTION contact_events_of_switch() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM add_contact_event(NEW.case_id, NEW.from_hop_id, 'switch_requested', NEW.issued_at,
            case_hotline(NEW.case_id), NULL, NULL,
            jsonb_build_object('switch_id', NEW.id, 'requested_by', NEW.requested_by,
                               'to', CASE WHEN NEW.to_number IS NULL THEN 'video' ELSE 'phone' END));
        RETURN NULL;
    END IF;
    IF OLD.used_at IS NULL AND NEW.used_at IS NOT NULL THEN
        PERFORM add_contact_event(NEW.case_id, NEW.to_hop_id, 'switched', NEW.used_at,
            case_hotline(NEW.case_id), NULL, NULL,
            jsonb_build_object('switch_id', NEW.id, 'from_hop', NEW.from_hop_id,
                               'to', CASE WHEN NEW.to_number IS NULL THEN 'video' ELSE 'phone' END));
    END IF;
    IF OLD.outcome IS NULL AND NEW.outcome IS NOT NULL AND NEW.outcome <> 'answered' THEN
        PERFORM add_contact_event(NEW.case_id, NEW.from_hop_id, 'switch_failed', NEW.outcome_at,
            case_hotline(NEW.case_id), NULL, NULL,
            jsonb_build_object('switch_id', NEW.id, 'to', 'phone', 'outcome', NEW.outcome,
                               'cause', NEW.hangup_cause, 'cause_text', NEW.hangup_cause_text));
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER switches_contact_events ON switches;
CREATE TRIGGER switches_contact_events AFTER INSERT OR UPDATE OF used_at, outcome ON switches
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_switch();
