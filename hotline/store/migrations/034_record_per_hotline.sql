-- Recording per hotline, files moved after the talk (issue 18, its remaining gaps).
--   hotlines.record               'never' (the default) | 'always' | 'on_demand': the record of
--                                 the hotline's queues that set none of their own
--   hotlines.record_announcement  a sound played before the first queue of a call that records,
--                                 unless that queue has an announcement of its own; NULL: none
--   queues.record                 NULL now means "the hotline's" (the hotline the caller came
--                                 through, or was sent to). Every queue provisioned before keeps
--                                 the value it has ('never' included: it may have been written on
--                                 purpose), so no queue records differently after this migration;
--                                 a provisioning file applied later that gives a queue no record
--                                 sets it to NULL (its hotline's, 'never' unless set).
--   recordings.moved_at           when the daemon moved the finished file to `recording_move_to`
--                                 (path then says where it is); NULL: where Asterisk wrote it, in
--                                 its recording directory
ALTER TABLE hotlines ADD COLUMN record text NOT NULL DEFAULT 'never'
    CHECK (record IN ('never', 'always', 'on_demand'));
ALTER TABLE hotlines ADD COLUMN record_announcement text;

ALTER TABLE queues ALTER COLUMN record DROP NOT NULL;
ALTER TABLE queues ALTER COLUMN record DROP DEFAULT;

ALTER TABLE recordings ADD COLUMN moved_at timestamptz;
