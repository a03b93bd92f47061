-- Removing a hotline, number, queue, agent or menu retires it instead of deleting it: hops and
-- queue events keep pointing at it, so history and statistics stay whole. Adding the same name
-- again brings the same row (and its history) back.
ALTER TABLE queues    ADD COLUMN retired_at timestamptz;
ALTER TABLE ivr_menus ADD COLUMN retired_at timestamptz;
ALTER TABLE hotlines  ADD COLUMN retired_at timestamptz;
ALTER TABLE numbers   ADD COLUMN retired_at timestamptz;
ALTER TABLE agents    ADD COLUMN retired_at timestamptz;
