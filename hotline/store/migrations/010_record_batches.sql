-- The write-behind's batches are applied exactly once. A connection lost after a commit but
-- before its reply made the retry apply the batch a second time: two answers and two completes
-- for one call in the statistics. Each daemon run is a writer whose batches are numbered in the
-- order it writes them, and it writes one at a time: only its last batch can be in doubt, so one
-- row per writer, holding the last number applied, tells a retry from a new batch. That row's
-- update is one HOT update per batch, not a cost per record.
CREATE TABLE record_writers (
    writer uuid PRIMARY KEY,
    node text NOT NULL,                       -- the daemon's node, for whoever reads this table
    started_at timestamptz NOT NULL DEFAULT now(),
    last_batch bigint NOT NULL
);

-- Applies `batch` (record_call_events) unless this writer's batch `batch_no` was applied already;
-- returns whether it applied it now.
CREATE FUNCTION record_call_batch(writer_id uuid, writer_node text, batch_no bigint, batch jsonb)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_writers AS w (writer, node, last_batch) VALUES (writer_id, writer_node, batch_no)
    ON CONFLICT ON CONSTRAINT record_writers_pkey DO UPDATE SET last_batch = excluded.last_batch
     WHERE w.last_batch < excluded.last_batch;
    IF NOT FOUND THEN
        RETURN false;  -- a retry of a batch whose commit's reply was lost
    END IF;
    PERFORM record_call_events(batch);
    RETURN true;
END
$$;
