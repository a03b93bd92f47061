-- On-demand recording (issue 18, its second part): a queue whose record is 'on_demand' records a
-- talk only once its agent asks (`hotline recording start CASE`, the agent page's Record button),
-- from that moment on, as an 'always' talk is recorded (hotline.engine.recording). The rows are
-- migration 030's.
ALTER TABLE queues DROP CONSTRAINT queues_record_check;
ALTER TABLE queues ADD CONSTRAINT queues_record_check CHECK (record IN ('never', 'always', 'on_demand'));

-- queues.record_announcement: an Asterisk sound played to the caller before joining the queue,
-- when the queue records (always or on_demand); NULL: nothing played.
ALTER TABLE queues ADD COLUMN record_announcement text;
