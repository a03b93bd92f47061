-- Kamailio in front of several Asterisk nodes (issue 20) reads and writes the one PostgreSQL
-- that holds the truth, in a schema of its own, `kamailio` (deploy/kamailio/kamailio.cfg):
--   version, location, location_attrs  Kamailio 5.6's own tables (usrloc with db_mode 1: agents'
--       registrations survive a Kamailio restart), as /usr/share/kamailio/postgres/
--       standard-create.sql and usrloc-create.sql make them.
--   dispatcher  a VIEW over `nodes`: the nodes that may take a new call now, i.e. not draining
--       and served by the active daemon (`serving_until`, which it bumps to now()+5 s every 2 s,
--       still ahead). Kamailio reloads it every second (rtimer + ds_reload), and probes each
--       row with OPTIONS for a dead Asterisk. attrs carry duid=<node> (the node's name, which
--       X-Hotline-Node steering looks up).
--   subscriber  a VIEW over live agents with a digest password: ha1 = md5(endpoint:asterisk:
--       password) (agents.password_ha1), so agents authenticate at Kamailio with realm
--       `asterisk` as they did at Asterisk (auth_db with calculate_ha1 = 0).
-- A statement trigger on location NOTIFYs `hotline_registrations` (hotline.store.registrations:
-- the daemon follows which agents' phones are registered at Kamailio).
-- The views run with their owner's rights, so Kamailio's role needs no right on hotline's own
-- tables; deploy/kamailio/role.sql grants it what it needs and nothing more.

CREATE SCHEMA kamailio;

CREATE TABLE kamailio.version (
    id SERIAL PRIMARY KEY NOT NULL,
    table_name VARCHAR(32) NOT NULL,
    table_version INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT version_table_name_idx UNIQUE (table_name)
);

CREATE TABLE kamailio.location (
    id SERIAL PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    contact VARCHAR(512) DEFAULT '' NOT NULL,
    received VARCHAR(128) DEFAULT NULL,
    path VARCHAR(512) DEFAULT NULL,
    expires TIMESTAMP WITHOUT TIME ZONE DEFAULT '2030-05-28 21:32:15' NOT NULL,
    q REAL DEFAULT 1.0 NOT NULL,
    callid VARCHAR(255) DEFAULT 'Default-Call-ID' NOT NULL,
    cseq INTEGER DEFAULT 1 NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL,
    flags INTEGER DEFAULT 0 NOT NULL,
    cflags INTEGER DEFAULT 0 NOT NULL,
    user_agent VARCHAR(255) DEFAULT '' NOT NULL,
    socket VARCHAR(64) DEFAULT NULL,
    methods INTEGER DEFAULT NULL,
    instance VARCHAR(255) DEFAULT NULL,
    reg_id INTEGER DEFAULT 0 NOT NULL,
    server_id INTEGER DEFAULT 0 NOT NULL,
    connection_id INTEGER DEFAULT 0 NOT NULL,
    keepalive INTEGER DEFAULT 0 NOT NULL,
    partition INTEGER DEFAULT 0 NOT NULL,
    CONSTRAINT location_ruid_idx UNIQUE (ruid)
);
CREATE INDEX location_account_contact_idx ON kamailio.location (username, domain, contact);
CREATE INDEX location_expires_idx ON kamailio.location (expires);
CREATE INDEX location_tcpcon_idx ON kamailio.location (connection_id);
CREATE INDEX location_connection_idx ON kamailio.location (server_id, connection_id);

CREATE TABLE kamailio.location_attrs (
    id SERIAL PRIMARY KEY NOT NULL,
    ruid VARCHAR(64) DEFAULT '' NOT NULL,
    username VARCHAR(64) DEFAULT '' NOT NULL,
    domain VARCHAR(64) DEFAULT NULL,
    aname VARCHAR(64) DEFAULT '' NOT NULL,
    atype INTEGER DEFAULT 0 NOT NULL,
    avalue VARCHAR(512) DEFAULT '' NOT NULL,
    last_modified TIMESTAMP WITHOUT TIME ZONE DEFAULT '2000-01-01 00:00:01' NOT NULL
);
CREATE INDEX location_attrs_account_record_idx ON kamailio.location_attrs (username, domain, ruid);
CREATE INDEX location_attrs_last_modified_idx ON kamailio.location_attrs (last_modified);

CREATE FUNCTION kamailio.notify_registrations() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hotline_registrations', '');
    RETURN NULL;
END $$;
-- a refresh of a registration (UPDATE of expires) changes nothing the daemon follows
CREATE TRIGGER location_changed AFTER INSERT OR DELETE OR UPDATE OF username ON kamailio.location
    FOR EACH STATEMENT EXECUTE FUNCTION kamailio.notify_registrations();

-- Set 1: the nodes that take new calls, probed. Set 2: every node, flags 4 (disabled: never
-- selected nor probed), which is how Kamailio knows a node's call to an agent even while the
-- node drains. id: a stable number per row (Kamailio wants one).
CREATE VIEW kamailio.dispatcher AS
SELECT (row_number() OVER (ORDER BY setid, name))::integer AS id, setid,
       sip_uri::varchar(192) AS destination, flags, 0 AS priority,
       ('duid=' || name)::varchar(128) AS attrs, name::varchar(64) AS description
  FROM (SELECT 1 AS setid, 0 AS flags, name, sip_uri FROM nodes
         WHERE NOT draining AND serving_until > now()
        UNION ALL
        SELECT 2, 4, name, sip_uri FROM nodes) AS n;

CREATE VIEW kamailio.subscriber AS
SELECT id::integer AS id,
       endpoint::varchar(64) AS username,
       ''::varchar(64) AS domain,
       ''::varchar(64) AS password,
       password_ha1::varchar(128) AS ha1,
       ''::varchar(128) AS ha1b
  FROM agents
 WHERE retired_at IS NULL AND password_ha1 IS NOT NULL;

INSERT INTO kamailio.version (table_name, table_version) VALUES
    ('version', 1), ('location', 9), ('location_attrs', 1), ('dispatcher', 4), ('subscriber', 7);
