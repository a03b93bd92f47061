-- An agent's own calls behind Kamailio (issue 20): a consult call, the REFER that ends an
-- attended transfer, a supervisor's feature code. Kamailio (deploy/kamailio/kamailio.cfg, route
-- AGENT_CALL) asks this view, per INVITE whose From user is an agent's endpoint, whether it is
-- an agent and on which node that agent talks now, and sends the call there: a consult leg must
-- meet the customer's leg on one node (a bridge cannot span nodes), and so must a supervisor's
-- leg meet the supervised agent's.
--   kamailio.agent_talks  one row per live agent with a digest password (the agents that
--       kamailio.subscriber lists): endpoint, name, and `talk_node`, the SIP URI of the node
--       holding that agent's live talk (an open hop the agent answered: hops.agent_id follows
--       the live talk, a transfer clears it) on a node the active daemon serves now; NULL when
--       the agent talks nowhere (Kamailio then picks any live node by a hash of the Call-ID).
-- A view with its owner's rights, like 044's: Kamailio's role reads it and nothing under it.

CREATE INDEX hops_open_agent_idx ON hops (agent_id) WHERE ended_at IS NULL AND agent_id IS NOT NULL;

-- No casts to Kamailio's column types (sqlops reads any): a cast column would keep the lookup by
-- endpoint off the agents' index.
CREATE VIEW kamailio.agent_talks AS
SELECT a.endpoint, a.name::text AS name,
       (SELECT n.sip_uri FROM hops h JOIN nodes n ON n.name = h.node
         WHERE h.agent_id = a.id AND h.ended_at IS NULL AND n.serving_until > now()
         ORDER BY h.answered_at DESC NULLS LAST, h.id DESC LIMIT 1) AS talk_node
  FROM agents a
 WHERE a.retired_at IS NULL AND a.password_ha1 IS NOT NULL;
