-- A caller an agent transferred to another agent who does not answer (issue 17): first in the
-- line of the queue the talk was in ('queue'), or the transferring agent rung back first, then
-- first in line ('agent').
ALTER TABLE queues ADD COLUMN transfer_no_answer text NOT NULL DEFAULT 'queue'
    CHECK (transfer_no_answer IN ('queue', 'agent'));
