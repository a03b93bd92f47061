-- A callback put back because its hotline is closed waits for the opening its hours give; when
-- provisioning changes those hours, the daemon makes such requests due at once to be looked at
-- again (opened earlier, a holiday removed, or closed longer): this flag says which they are,
-- so a request waiting out its retry interval is never woken early.
ALTER TABLE callbacks ADD COLUMN waits_for_opening boolean NOT NULL DEFAULT false;
