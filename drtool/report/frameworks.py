"""What a drtool report evidences, control by control, and what it leaves to the organisation.

The control titles are paraphrased; the auditor's own copy of each framework is the reference.
Each entry says what the report provides towards the control and, as plainly, what it does not.
"""

from __future__ import annotations

from typing import Any

FRAMEWORKS: list[dict[str, Any]] = [
    {
        "framework": "SOC 2 (Trust Services Criteria, 2017)", "control": "A1.3",
        "title": "Recovery plan procedures supporting system recovery are tested",
        "evidenced_by": "Each drill restores real backups onto separate targets, measures "
                        "recovery time and data loss against the stated objectives, and "
                        "records every step and check in a tamper-evident journal.",
        "not_covered": "The recovery plan document itself and its approval.",
    },
    {
        "framework": "SOC 2 (Trust Services Criteria, 2017)", "control": "CC7.5",
        "title": "Activities to recover from identified security incidents",
        "evidenced_by": "Restoration of the data stores and restart of the service from "
                        "backup is exercised on a schedule, with failures and their "
                        "remediation listed.",
        "not_covered": "Incident identification, communication and root-cause activities.",
    },
    {
        "framework": "ISO/IEC 27001:2022 Annex A", "control": "A.5.30",
        "title": "ICT readiness for business continuity",
        "evidenced_by": "Recovery time and recovery point objectives are stated per "
                        "environment and each drill's measured figures are judged against "
                        "them; the trend over the quarter is charted.",
        "not_covered": "The business impact analysis the objectives come from.",
    },
    {
        "framework": "ISO/IEC 27001:2022 Annex A", "control": "A.8.13",
        "title": "Information backup: backup copies are maintained and regularly tested",
        "evidenced_by": "Every drill takes a backup, checks each file's SHA-256 before "
                        "restoring it, and verifies the restored data against the backup's "
                        "manifest: exact row counts per table and key counts.",
        "not_covered": "Backup of systems drtool is not configured to drill.",
    },
    {
        "framework": "EU DORA (Regulation (EU) 2022/2554)", "control": "Art. 11",
        "title": "Response and recovery: ICT business continuity plans are tested",
        "evidenced_by": "Scheduled recovery drills with measured recovery times, the "
                        "drill cadence actually achieved, and the results of each test.",
        "not_covered": "Crisis communication, and the continuity policy's governance.",
    },
    {
        "framework": "EU DORA (Regulation (EU) 2022/2554)", "control": "Art. 12",
        "title": "Backup policies, and restoration and recovery procedures",
        "evidenced_by": "Restorations from backup onto systems separate from the source, "
                        "with data integrity verified and data loss measured.",
        "not_covered": "Where backups are kept (segregation of the backup location).",
    },
    {
        "framework": "PCI DSS v4.0", "control": "12.10.2",
        "title": "The incident response plan is reviewed and tested at least every 12 months",
        "evidenced_by": "The test of the plan's business recovery and data backup elements "
                        "(see 12.10.1), with results and dates.",
        "not_covered": "The review of the plan and its other elements (roles, "
                       "communication, legal requirements).",
    },
    {
        "framework": "HIPAA Security Rule", "control": "45 CFR 164.308(a)(7)(ii)(D)",
        "title": "Testing and revision procedures for contingency plans",
        "evidenced_by": "Periodic tests of the data backup and disaster recovery elements of "
                        "the contingency plan, with failures and remediation recorded.",
        "not_covered": "Revision of the contingency plan after a test.",
    },
]
