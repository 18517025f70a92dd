"""The SMTP probe: is inbound mail still flowing through the FortiGate's VIP?

``run_probe`` (retries, baseline comparison) is what the engine and the CLI call;
``probe_once`` is a single attempt. Failures are named with ``FailureClass``;
``mail_flows`` says which of them are not mail outages (a failed vantage, a spam verdict).
"""

from __future__ import annotations

from fortiauto.probe.classify import FailureClass, against_baseline, mail_flows, spam_tag
from fortiauto.probe.smtp import probe_once, run_probe

__all__ = ["FailureClass", "against_baseline", "mail_flows", "probe_once", "run_probe", "spam_tag"]
