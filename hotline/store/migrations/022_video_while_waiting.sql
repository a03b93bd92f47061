-- Changing channel while waiting (issue 17): a waiting caller can be sent the video link and go on
-- waiting by video, in the same place in line.
-- A queue's video_key: the key a waiting caller presses for the link (NULL: not offered).
ALTER TABLE queues ADD COLUMN video_key text CHECK (video_key ~ '^[0-9*#]$');

-- A menu key `video:QUEUE` sends the link and puts the caller in QUEUE, where the video leg takes
-- its place: the option names that queue. A bare `video` (which only hung up) is kept as it was
-- stored; provisioning refuses it until it names a queue.
DO $$
DECLARE c text;
BEGIN
    FOR c IN SELECT conname FROM pg_constraint
              WHERE conrelid = 'ivr_options'::regclass AND contype = 'c'
                AND pg_get_constraintdef(oid) LIKE '%target_queue_id IS NOT NULL%' LOOP
        EXECUTE format('ALTER TABLE ivr_options DROP CONSTRAINT %I', c);
    END LOOP;
END $$;
ALTER TABLE ivr_options ADD CONSTRAINT ivr_options_queue_target_check
    CHECK (CASE action WHEN 'queue' THEN target_queue_id IS NOT NULL
                       WHEN 'video' THEN true
                       ELSE target_queue_id IS NULL END);
