-- How long a number dialled through a trunk rings before it counts as not answered (a transfer
-- to a number, a callback's customer, a video customer moving to their phone): the carrier's and
-- the site's business, so a trunk's setting (provisioning `trunks.NAME.ring_timeout`).
ALTER TABLE trunks ADD COLUMN ring_timeout integer NOT NULL DEFAULT 30
    CHECK (ring_timeout BETWEEN 5 AND 300);
