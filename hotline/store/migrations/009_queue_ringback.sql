-- A caller whose agent is rung at once hears ringing, not answered yet (app_queue's `r` option),
-- for at most ringback_s seconds; then it is answered with music on hold while the agent rings
-- on. A caller who has to wait is answered with music at once. 0: every caller is answered with
-- music the moment it joins.
ALTER TABLE queues ADD COLUMN ringback_s seconds NOT NULL DEFAULT 3 CHECK (ringback_s <= 60);
