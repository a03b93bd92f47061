-- The contact-event stream (migration 029) gets supervisions (031) and conference parties (013),
-- from their rows, as the other steps:
--   supervision_started  a supervisor is in: listening, whispering or barged in (started_at set)
--   supervision_ended    they left, or the talk ended (ended_at set after a start)
--   participant_joined   a party invited into the case's bridge (a row of case_participants)
--   participant_left     that party left (left_at set)
-- A supervision refused or never answered makes no event: no party was ever in the contact.

CREATE FUNCTION contact_events_of_supervision() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    hl text := coalesce((SELECT hotline_name(hotline_id) FROM hops WHERE id = NEW.hop_id),
                        case_hotline(NEW.case_id));
    q text := (SELECT queue_name(queue_id) FROM hops WHERE id = NEW.hop_id);
    a text := agent_name(NEW.agent_id);
    body jsonb := jsonb_build_object('supervision_id', NEW.id, 'mode', NEW.mode,
                                     'supervisor', NEW.supervisor, 'asked_by', NEW.asked_by);
BEGIN
    IF NEW.started_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.started_at IS NULL) THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'supervision_started', NEW.started_at,
                                  hl, q, a, body);
    END IF;
    IF NEW.started_at IS NOT NULL AND NEW.ended_at IS NOT NULL
       AND (TG_OP = 'INSERT' OR OLD.ended_at IS NULL) THEN
        PERFORM add_contact_event(NEW.case_id, NEW.hop_id, 'supervision_ended', NEW.ended_at, hl, q, a,
                                  body || jsonb_build_object('detail', nullif(NEW.detail, '')));
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER supervisions_contact_events AFTER INSERT OR UPDATE OF started_at, ended_at ON supervisions
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_supervision();

CREATE FUNCTION contact_events_of_participant() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    body jsonb := jsonb_build_object('participant_id', NEW.id, 'invited_by', NEW.invited_by,
                                     'node', NEW.node, 'channel_id', NEW.channel_id);
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM add_contact_event(NEW.case_id, NULL, 'participant_joined', NEW.joined_at,
                                  case_hotline(NEW.case_id), NULL, agent_name(NEW.agent_id), body);
    END IF;
    IF NEW.left_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.left_at IS NULL) THEN
        PERFORM add_contact_event(NEW.case_id, NULL, 'participant_left', NEW.left_at,
                                  case_hotline(NEW.case_id), NULL, agent_name(NEW.agent_id), body);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER case_participants_contact_events AFTER INSERT OR UPDATE OF left_at ON case_participants
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_participant();
