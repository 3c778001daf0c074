"""A drill as JUnit XML, for CI systems: one test case per phase and one per check."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from drtool.core.model import ABORTED, FAILED, PASSED, SKIPPED, Journal


def junit_xml(journal: Journal) -> str:
    """The JUnit XML text of one drill (or backup, restore, verify run)."""
    suite = ET.Element("testsuite", name=f"drtool {journal.operation} {journal.env}",
                       timestamp=journal.started_at, id=journal.drill_id)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    total = 0.0
    for phase in journal.phases:
        case = ET.SubElement(suite, "testcase", classname=f"drtool.{journal.env}.phase",
                             name=phase.name, time=f"{phase.duration_s or 0:.3f}")
        total += phase.duration_s or 0
        counts["tests"] += 1
        if phase.status == SKIPPED or phase.status not in (PASSED, FAILED, ABORTED):
            ET.SubElement(case, "skipped", message=f"not run ({phase.status})")
            counts["skipped"] += 1
        elif phase.status != PASSED:
            # A failed check is a test failure; a phase that could not run is an error.
            kind = journal.failure.kind if journal.failure else "orchestration"
            tag = "failure" if kind == "check" and phase.status == FAILED else "error"
            element = ET.SubElement(case, tag, message=phase.error or phase.status,
                                    type=kind)
            element.text = phase.error or ""
            counts["failures" if tag == "failure" else "errors"] += 1
    for check in journal.checks:
        case = ET.SubElement(suite, "testcase", classname=f"drtool.{journal.env}.check",
                             name=f"{check.name} {check.target}", time="0")
        counts["tests"] += 1
        if not check.passed:
            element = ET.SubElement(case, "failure", type="check",
                                    message=f"expected {check.expected}, actual {check.actual}")
            element.text = check.describe()
            counts["failures"] += 1
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{total:.3f}")
    root = ET.Element("testsuites", name="drtool")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
