"""The lab's mock FortiManager: JSON-RPC over HTTPS managing the lab devices (``lab up --fortimanager``).

``start_fortimanager`` serves it; ``route_site`` rewrites the lab's site data to go through it.
An install changes a device's configuration in-process, as FortiManager's tunnel to a unit would.
"""

from fortiauto_lab.fortimanager.api import FortiManagerMock
from fortiauto_lab.fortimanager.app import RunningFortiManager, route_site, start_fortimanager
from fortiauto_lab.fortimanager.faults import FmgFaults, parse_fmg_faults

__all__ = [
    "FmgFaults",
    "FortiManagerMock",
    "RunningFortiManager",
    "parse_fmg_faults",
    "route_site",
    "start_fortimanager",
]
