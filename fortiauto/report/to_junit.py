"""JUnit XML: one testcase per device, so CI dashboards and change tools can show a run."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from fortiauto.report.probe_text import render_probe
from fortiauto.results import RunResult

__all__ = ["run_to_junit"]


def run_to_junit(run: RunResult) -> str:
    failures = sum(1 for d in run.devices if d.failed)
    skipped = sum(1 for d in run.devices if d.status == "skipped")
    seconds = (run.finished - run.started).total_seconds()
    suite = ET.Element(
        "testsuite",
        name=f"fortiauto {run.command} {run.run_id}",
        tests=str(len(run.devices)),
        failures=str(failures),
        skipped=str(skipped),
        time=f"{seconds:.3f}",
    )
    for device in run.devices:
        case = ET.SubElement(suite, "testcase", classname=f"fortiauto.{run.command}", name=device.name)
        probe = device.probe or device.baseline
        if device.failed:
            failure = ET.SubElement(case, "failure", message=device.reason, type=device.status)
            failure.text = render_probe(probe) if probe is not None else device.reason
        elif device.status == "skipped":
            ET.SubElement(case, "skipped", message=device.reason)
        out = ET.SubElement(case, "system-out")
        out.text = (
            f"status={device.status} effect={device.effect} fallback={device.fallback_used or '-'}\n"
            + (render_probe(probe) if probe is not None else "")
        )
    ET.indent(suite)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
