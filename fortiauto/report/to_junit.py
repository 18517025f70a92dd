"""JUnit XML: one testcase per device, so CI dashboards and change tools can show a run.

A rolled-back or failed device is a ``<failure>`` whose text is the probe that caused it (class,
step timings, transcript) and the outage window; a device on a fallback rung passes but keeps
that failure in its ``system-out``. Every text goes through ``safe.xml_text``: ElementTree
escapes markup characters, but would write control characters XML 1.0 cannot hold.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fortiauto.report.probe_text import render_probe
from fortiauto.report.safe import xml_text
from fortiauto.report.story import failure, outage_text, stage_probes
from fortiauto.results import DeviceResult, RunResult

__all__ = ["run_to_junit"]


def _failure_text(device: DeviceResult) -> str:
    cause = failure(device)
    lines = [device.reason]
    outage = outage_text(device)
    if outage is not None:
        lines.append(f"outage window: {outage}")
    if cause is not None:
        lines += [f"failed probe: {cause.label}", render_probe(cause.result)]
    return "\n".join(lines)


def _system_out(device: DeviceResult) -> str:
    lines = [f"status={device.status} effect={device.effect} fallback={device.fallback_used or '-'}"]
    cause = failure(device)
    if cause is not None and not device.failed:
        lines += ["fell back after this failure:", _failure_text(device)]
    for view in stage_probes(device):
        lines += [f"--- {view.label} probe", render_probe(view.result)]
    return "\n".join(lines) + "\n"


def run_to_junit(run: RunResult) -> str:
    failures = sum(1 for d in run.devices if d.failed)
    skipped = sum(1 for d in run.devices if d.status in ("skipped", "refused"))
    seconds = (run.finished - run.started).total_seconds()
    suite = ET.Element(
        "testsuite",
        name=xml_text(f"fortiauto {run.command} {run.run_id}"),
        tests=str(len(run.devices)),
        failures=str(failures),
        skipped=str(skipped),
        time=f"{seconds:.3f}",
    )
    for device in run.devices:
        case = ET.SubElement(
            suite, "testcase", classname=f"fortiauto.{run.command}", name=xml_text(device.name)
        )
        if device.failed:
            node = ET.SubElement(case, "failure", message=xml_text(device.reason), type=device.status)
            node.text = xml_text(_failure_text(device))
        elif device.status in ("skipped", "refused"):
            ET.SubElement(case, "skipped", message=xml_text(device.reason))
        ET.SubElement(case, "system-out").text = xml_text(_system_out(device))
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
