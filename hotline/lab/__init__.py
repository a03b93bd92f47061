"""The lab: a real Asterisk 22 and PostgreSQL 18 from Debian sid, chrooted, on 127.0.0.1, for
trying hotline and for the tests. `Lab` is the whole of it; the modules are its parts: the Debian
root (root, mirror), the host checks (host, shell), the two daemons (postgres, asterisk,
asterisk_conf) and the secrets (credentials)."""

from hotline.lab.lab import Lab, LabStatus

__all__ = ["Lab", "LabStatus"]
