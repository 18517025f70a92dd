"""The mock FortiGate lab: REST API, SMTP data plane, faults and device states (docs/lab.md).

A package apart from fortiauto (installed with ``fortiauto[lab]``): it imports nothing from the
product and plugs into it through entry points (``fortiauto_lab.cli``, ``fortiauto_lab.delivery``).
"""
