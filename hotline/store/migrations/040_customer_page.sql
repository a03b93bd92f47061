-- The customer's web page as a product (issue 19).
--   hotlines.page_title   the name the customer page shows (its heading and the tab's title);
--                         NULL: the page's own ("Video call")
--   hotlines.page_text    a short text under it (opening hours, what the line is for); NULL: none
--   hotlines.page_logo    an https URL of the hotline's logo; NULL: none
--   hotlines.page_color   the page's accent colour, #RRGGBB; NULL: the page's own
-- hotline.provision.parse checks each for the person typing; the CHECKs keep any other writer
-- to the same rules.
ALTER TABLE hotlines
    ADD COLUMN page_title text CHECK (char_length(page_title) BETWEEN 1 AND 80
                                      AND page_title !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]'),
    ADD COLUMN page_text text CHECK (char_length(page_text) BETWEEN 1 AND 300
                                     AND page_text !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]'),
    ADD COLUMN page_logo text CHECK (char_length(page_logo) <= 500 AND page_logo ~ '^https://[^\s"''<>]+$'),
    ADD COLUMN page_color text CHECK (page_color ~ '^#[0-9a-fA-F]{6}$');

-- A customer's one-question rating of a web call, from the page after the talk: once per leg (the
-- hop the page talked on), 1 to 5, an optional short comment. Kept apart from any phone survey.
CREATE TABLE customer_ratings (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES cases (id),
    hop_id      bigint NOT NULL UNIQUE REFERENCES hops (id),
    score       smallint NOT NULL CHECK (score BETWEEN 1 AND 5),
    comment     text CHECK (char_length(comment) BETWEEN 1 AND 500
                            AND comment !~ '[\x01-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]'),
    rated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customer_ratings_case_idx ON customer_ratings (case_id);
