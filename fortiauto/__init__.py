"""fortiauto: turn on anti-spam logging and SSL inspection for inbound mail on FortiGates, safely."""

__version__ = "0.1.0"
