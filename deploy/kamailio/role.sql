-- Kamailio's PostgreSQL role: reads the node list, the agents' digest passwords and the node each
-- agent talks on (views), keeps the registrations (location), nothing else. Run as a superuser (or
-- a role with CREATEROLE that owns the `kamailio` schema) after `hotline db migrate`, in hotline's
-- database:
--   psql -v password="'a long random secret'" -d hotline -f deploy/kamailio/role.sql
-- and put the same password into kamailio-local.cfg's DBURL.
SELECT 'CREATE ROLE kamailio LOGIN'
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'kamailio') \gexec
ALTER ROLE kamailio WITH LOGIN PASSWORD :password;
ALTER ROLE kamailio SET search_path = kamailio;
GRANT USAGE ON SCHEMA kamailio TO kamailio;
GRANT SELECT ON kamailio.version, kamailio.dispatcher, kamailio.subscriber, kamailio.agent_talks
    TO kamailio;
GRANT SELECT, INSERT, UPDATE, DELETE ON kamailio.location, kamailio.location_attrs TO kamailio;
GRANT USAGE ON SEQUENCE kamailio.location_id_seq, kamailio.location_attrs_id_seq TO kamailio;
