"""A backup's verification report as the checklist people read: each step of ``backup_verify`` passed, failed or
not run, with the figure it found."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CheckState(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_RUN = "not_run"


@dataclass(frozen=True)
class Check:
    label: str
    state: CheckState
    detail: str


# The steps of a verification, in the order it runs them (apps/backups/restore.py, _verification_checks). The
# report lists the checks that passed, in that order, then the one that failed: the failure is always the step
# after the last that passed, whatever its reason is called ("missing", "wrong_key", or "checksum" when a file
# that matched its checksum turns out corrupted half-way through decryption).
STEPS = (
    "The file is in the backup storage, complete, with its recorded SHA-256",
    "It was encrypted with the configured key",
    "It decrypts and restores into a scratch database",
    "Every table holds the rows recorded when the backup was taken",
)


def verification_checklist(report: dict) -> list[Check]:
    """Every step of the verification ``report`` describes; empty for a backup never verified."""
    if not report:
        return []
    results = report.get("checks", [])
    checklist = []
    for index, label in enumerate(STEPS):
        if index < len(results):
            result = results[index]
            state = CheckState.PASSED if result.get("ok") else CheckState.FAILED
            checklist.append(Check(label, state, result.get("detail", "")))
        else:
            checklist.append(Check(label, CheckState.NOT_RUN, "not run: an earlier step failed"))
    return checklist
