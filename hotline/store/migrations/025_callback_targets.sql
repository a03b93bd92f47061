-- Queued callbacks from a menu key and as a hotline's closed action (issue 17): `callback:QUEUE`
-- names the queue whose line the request joins. A bare `callback` (which only hung up) is kept
-- as it was stored; provisioning refuses it until it names a queue.
ALTER TABLE ivr_options DROP CONSTRAINT ivr_options_queue_target_check;
ALTER TABLE ivr_options ADD CONSTRAINT ivr_options_queue_target_check
    CHECK (CASE action WHEN 'queue' THEN target_queue_id IS NOT NULL
                       WHEN 'video' THEN true
                       WHEN 'callback' THEN true
                       ELSE target_queue_id IS NULL END);

-- A closed hotline's `callback:QUEUE`: the queue its callers' requests join.
ALTER TABLE hotlines ADD COLUMN closed_queue_id bigint REFERENCES queues (id) DEFERRABLE INITIALLY DEFERRED,
    ADD CONSTRAINT hotlines_closed_queue_check CHECK (closed_queue_id IS NULL OR closed_action = 'callback');
