"""One device's transaction, phase by phase (``device.py``), and the one place its outcome is chosen.

``apply`` journals and writes, ``verify`` probes and checks the effect, ``undo`` reverses
(for a rollback, ``fortiauto rollback`` and the Ansible module alike), ``outcome`` turns what
happened into a status and an exit code.
"""

from fortiauto.transaction.device import ClientFactory, DeviceApi, DeviceTransaction, TransactionOptions
from fortiauto.transaction.outcome import Ending, conclude, fleet_exit_code
from fortiauto.transaction.phases import Phase
from fortiauto.transaction.undo import UndoReport, undo_entries
from fortiauto.transaction.verify import Prober

__all__ = [
    "ClientFactory",
    "DeviceApi",
    "DeviceTransaction",
    "Ending",
    "Phase",
    "Prober",
    "TransactionOptions",
    "UndoReport",
    "conclude",
    "fleet_exit_code",
    "undo_entries",
]
