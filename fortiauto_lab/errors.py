"""The lab's own error for bad lab arguments (``--devices``, ``--version``, ``--faults``, ``--model``...).

Raised before anything starts; the lab's CLI prints it as one line and exits 2. The lab never
raises the product's errors: it is a stand-in FortiGate, not part of fortiauto.
"""

from __future__ import annotations

__all__ = ["LabInputError"]


class LabInputError(ValueError):
    """A lab argument that cannot be acted on; the message says which and why."""
