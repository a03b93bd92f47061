-- A queue may announce the estimated hold time with the position, and may let a waiting caller
-- leave with a key: the keys of its breakout menu (FreePBX's "break out" IVR, app_queue's
-- `context`) take the caller straight to that key's target.
ALTER TABLE queues ADD COLUMN announce_holdtime boolean NOT NULL DEFAULT false;
ALTER TABLE queues ADD COLUMN breakout_menu_id bigint
    REFERENCES ivr_menus (id) DEFERRABLE INITIALLY DEFERRED;
