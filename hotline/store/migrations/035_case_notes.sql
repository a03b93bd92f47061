-- Free-text notes on a case (issue 18's screen pop: "notes of the same customer key"): written by
-- an agent from their page during or after a talk of the case, or by `hotline case note` (author
-- 'cli'). Append-only: a note is never edited; a correction is a newer note.
-- The text is checked by hotline.store.case_notes before it gets here (a clear error for the
-- person typing); the CHECK keeps any other writer to the same rule: 1 to 2000 characters, no
-- control characters but newline and tab, no line or paragraph separators, no bidi controls.
CREATE TABLE case_notes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES cases (id),
    author      text NOT NULL CHECK (author <> ''),   -- the agent's name, or 'cli'
    agent_id    bigint REFERENCES agents (id),        -- the agent who wrote it (NULL: the CLI)
    text        text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 2000
                                     AND text !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX case_notes_case_idx ON case_notes (case_id, id);

-- The contact-event stream (029) gets `note_added`, in the transaction of the note's row.
CREATE FUNCTION contact_events_of_note() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM add_contact_event(NEW.case_id, NULL, 'note_added', NEW.created_at, case_hotline(NEW.case_id),
                              NULL, agent_name(NEW.agent_id),
                              jsonb_build_object('note_id', NEW.id, 'author', NEW.author, 'text', NEW.text));
    RETURN NULL;
END
$$;
CREATE TRIGGER case_notes_contact_events AFTER INSERT ON case_notes
    FOR EACH ROW EXECUTE FUNCTION contact_events_of_note();
