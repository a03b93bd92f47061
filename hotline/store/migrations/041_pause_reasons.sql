-- The reasons an agent may pause for (issue 19: the agent's desk offers them; `hotline agent
-- pause` refuses any other once a list exists). Provisioned like the rest (`pause_reasons = [...]`
-- in the file, `hotline agent pause-reasons`), replaced whole. No rows: any reason goes, as before.
-- agent_pauses keeps the reason's text, so removing a reason leaves past pauses as they were.
CREATE TABLE pause_reasons (
    position  integer PRIMARY KEY CHECK (position > 0),
    reason    text NOT NULL UNIQUE CHECK (char_length(reason) BETWEEN 1 AND 100
                                          AND reason !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]')
);
