"""The SMTP probe: is inbound mail still flowing through the FortiGate's VIP?

``run_probe`` (retries, baseline comparison) is what the engine and the CLI call;
``probe_once`` is a single attempt. Failures are named with ``FailureClass``.
"""

from __future__ import annotations

from fortiauto.probe.classify import FailureClass, against_baseline
from fortiauto.probe.smtp import probe_once, run_probe

__all__ = ["FailureClass", "against_baseline", "probe_once", "run_probe"]
