-- A caller an agent transferred to another agent who does not answer (issue 17): first in the
-- line of the queue the talk was in ('queue'), or the transferring agent rung back first, then
-- first in line ('agent').
ALTER TABLE queues ADD COLUMN transfer_no_answer text NOT NULL DEFAULT 'queue'
    CHECK (transfer_no_answer IN ('queue', 'agent'));

-- An attended (consult) transfer is rows of its steps: its start ('consulting': the customer on
-- hold, the target rung), then its end: 'transferred' (completed), 'cancelled' (the agent took the
-- customer back, or the target hung up before the completion) or 'unanswered' (the target declined
-- or did not answer).
ALTER TABLE transfers DROP CONSTRAINT transfers_outcome_check;
ALTER TABLE transfers ADD CONSTRAINT transfers_outcome_check
    CHECK (outcome IN ('transferred', 'refused', 'consulting', 'cancelled', 'unanswered'));
