-- The switch key against SMS pumping (issue 15): a caller's press that is refused (the case has
-- had its links, or the leg is a browser's, on video already) is recorded once per leg, however
-- often the key is pressed; later presses find this row and record and send nothing.
CREATE TABLE switch_refusals (
    hop_id        bigint PRIMARY KEY REFERENCES hops (id),
    case_id       bigint NOT NULL REFERENCES cases (id),
    reason        text NOT NULL CHECK (reason <> ''),
    refused_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX switch_refusals_case_idx ON switch_refusals (case_id);
