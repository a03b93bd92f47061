"""The small web side of the daemon: click-to-call video pages, the phone-to-video switch link and
the agent's page, all on top of JsSIP talking SIP over Asterisk's WebSocket."""
