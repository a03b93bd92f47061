-- queue_events is an append-only log (app_queue's queue_log as a table), written only by
-- record_call_events() from the ids of the hop the daemon opened. Its foreign keys to queues,
-- agents and cases cost three row locks per event, each a WAL record on the same few hot rows
-- (every event of a queue locked that queue's row): twelve per answered call, about a sixth of
-- the database's CPU per call under load (pg_stat_statements on the bench). Queues and agents
-- are never deleted (retired, migration 002), so those keys guarded nothing the application
-- does. The key to the hop stays: an event always belongs to a real leg, and the leg to its case.
ALTER TABLE queue_events DROP CONSTRAINT queue_events_queue_id_fkey,
                         DROP CONSTRAINT queue_events_agent_id_fkey,
                         DROP CONSTRAINT queue_events_case_id_fkey;
