"""The one priority rule for every channel: content only (classifier label, score, severity), never reach."""

from __future__ import annotations

from typing import Protocol

URGENT, HIGH, NORMAL, LOW = 1, 2, 3, 4
SEVERITY_PRIORITY = {4: URGENT, 3: HIGH, 2: NORMAL, 1: LOW}


class Verdict(Protocol):
    """What the classifier said about a text (nlp.Classification satisfies it; ticketing never imports spaCy)."""

    # Read-only properties, so that a frozen dataclass (as nlp.Classification is) satisfies the protocol.
    @property
    def label(self) -> str: ...
    @property
    def score(self) -> float: ...
    @property
    def severity(self) -> int | None: ...
    @property
    def triage_reason(self) -> str | None: ...
    @property
    def model_version(self) -> str: ...


def is_complaint(verdict: Verdict) -> bool:
    """Complaints and posts the pipeline cannot judge (which go to human triage) both become tickets."""
    return verdict.label == "complaint" or verdict.triage_reason is not None


def priority_for(verdict: Verdict) -> int:
    """1 (most urgent) .. 4. Takes only what the text says; there is no parameter through which reach could enter."""
    if verdict.triage_reason is not None:
        return NORMAL
    if verdict.severity in SEVERITY_PRIORITY:
        return SEVERITY_PRIORITY[verdict.severity]
    if verdict.score >= 0.85:
        return HIGH
    if verdict.score >= 0.6:
        return NORMAL
    return LOW


# Distinct reporters at which an incident's priority rises one more level above its most urgent member's.
REPORTER_STEPS = (5, 25, 100)


def incident_priority(member_priority: int, reporters: int) -> int:
    """An incident's priority: its most urgent member's, one level more urgent at each of REPORTER_STEPS distinct
    reporters (people, not posts or followers), never above URGENT."""
    raised = sum(1 for step in REPORTER_STEPS if reporters >= step)
    return max(URGENT, member_priority - raised)
