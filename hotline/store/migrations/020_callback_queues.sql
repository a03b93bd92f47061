-- Queued callbacks offered by a queue: the key a waiting caller presses (NULL: none offered), how
-- many times an unanswered callback is tried again and how far apart, and when an unplaced one is
-- dropped (NULL: never). A hop that ended with the caller asking to be called back ends
-- 'callback', and its queue visit records a 'callback' event (not an abandon).
ALTER TABLE queues
    ADD COLUMN callback_key text CHECK (callback_key ~ '^[0-9*#]$'),
    ADD COLUMN callback_retries integer NOT NULL DEFAULT 2 CHECK (callback_retries BETWEEN 0 AND 10),
    ADD COLUMN callback_retry_interval_s seconds NOT NULL DEFAULT 300
        CHECK (callback_retry_interval_s BETWEEN 10 AND 86400),
    ADD COLUMN callback_expiry_s seconds DEFAULT 14400 CHECK (callback_expiry_s BETWEEN 60 AND 604800);

ALTER TABLE hops DROP CONSTRAINT hops_end_reason_check;
ALTER TABLE hops ADD CONSTRAINT hops_end_reason_check
    CHECK (end_reason IN ('completed', 'abandoned', 'busy', 'overflow', 'transferred', 'switched', 'failed',
                          'closed', 'callback'));
ALTER TABLE queue_events DROP CONSTRAINT queue_events_event_check;
ALTER TABLE queue_events ADD CONSTRAINT queue_events_event_check
    CHECK (event IN ('join', 'ring', 'ring_noanswer', 'answer', 'abandon', 'overflow', 'exit_key', 'complete',
                     'transfer', 'callback'));
