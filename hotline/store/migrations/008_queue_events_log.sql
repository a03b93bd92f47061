-- queue_events is an append-only log (app_queue's queue_log as a table), written only by
-- record_call_events() from the ids of the hop the daemon opened. Its foreign keys to queues,
-- agents and cases cost three row locks per event (a foreign-key check locks the row it finds),
-- every event of a queue locking that queue's one row: on the bench, pg_stat_statements counted
-- 23 checks on `queues` per call, and a micro-benchmark of a call's statements used 15-20% less
-- database CPU without these keys. Queues and agents are never deleted (retired, migration 002),
-- so those keys guarded nothing the application does. The key to the hop stays: an event always
-- belongs to a real leg, and the leg to its case.
ALTER TABLE queue_events DROP CONSTRAINT queue_events_queue_id_fkey,
                         DROP CONSTRAINT queue_events_agent_id_fkey,
                         DROP CONSTRAINT queue_events_case_id_fkey;
