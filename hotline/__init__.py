"""hotline: a routing engine for telephone and video hotlines on Asterisk."""

__version__ = "0.1.0"
