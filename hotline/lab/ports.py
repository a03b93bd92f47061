"""Where the lab listens: every daemon on 127.0.0.1, on the ports the reference config names."""

HOST = "127.0.0.1"
AMI_PORT = 5038
HTTP_PORT = 8088
SIP_PORT = 5060
PG_PORT = 55432

PORTS = {"ami": AMI_PORT, "http": HTTP_PORT, "sip": SIP_PORT, "postgres": PG_PORT}
ASTERISK_PORTS = ((AMI_PORT, "tcp"), (HTTP_PORT, "tcp"), (SIP_PORT, "udp"), (SIP_PORT, "tcp"))
PG_PORTS = ((PG_PORT, "tcp"),)
