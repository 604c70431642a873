"""When probe outcomes add up to a decision (Kubernetes probe semantics).

Healthy once ``success_threshold`` probes in a row succeeded, Unhealthy once
``failure_threshold`` probes in a row failed; an outcome resets the opposite counter, so a
flapping target keeps being probed. Pure and immutable: ``observe`` returns a new tally.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from activities.health.spec import HealthCheck


@dataclass(frozen=True)
class ProbeOutcome:
    """What one probe saw: success or not, and a short message (``HTTP 503 (expected 200)``)."""

    success: bool
    message: str


class Decision(StrEnum):
    PROBING = "Probing"
    HEALTHY = "Healthy"
    UNHEALTHY = "Unhealthy"


@dataclass(frozen=True)
class ProbeTally:
    """Consecutive successes and failures so far, and what they decide."""

    success_threshold: int = 1
    failure_threshold: int = 3
    probes: int = 0
    consecutive_successes: int = 0
    consecutive_failures: int = 0
    last_message: str | None = None

    def __post_init__(self) -> None:
        if self.success_threshold < 1 or self.failure_threshold < 1:
            raise ValueError(
                f"thresholds must be >= 1, got success={self.success_threshold}"
                f" failure={self.failure_threshold}"
            )

    @classmethod
    def for_check(cls, check: HealthCheck) -> ProbeTally:
        """An empty tally with ``check``'s thresholds."""
        return cls(
            success_threshold=check.success_threshold, failure_threshold=check.failure_threshold
        )

    def observe(self, outcome: ProbeOutcome) -> ProbeTally:
        """The tally after one more probe."""
        if outcome.success:
            successes, failures = self.consecutive_successes + 1, 0
        else:
            successes, failures = 0, self.consecutive_failures + 1
        return replace(
            self,
            probes=self.probes + 1,
            consecutive_successes=successes,
            consecutive_failures=failures,
            last_message=outcome.message,
        )

    @property
    def decision(self) -> Decision:
        if self.consecutive_successes >= self.success_threshold:
            return Decision.HEALTHY
        if self.consecutive_failures >= self.failure_threshold:
            return Decision.UNHEALTHY
        return Decision.PROBING

    def summary(self) -> str:
        """One line for reports: what decided (or not) and the last thing seen."""
        last = self.last_message or "no probe yet"
        if self.decision is Decision.HEALTHY:
            return f"healthy: {_times(self.consecutive_successes, 'success')} in a row; {last}"
        if self.decision is Decision.UNHEALTHY:
            return f"unhealthy: {_times(self.consecutive_failures, 'failure')} in a row; {last}"
        return f"undecided after {_times(self.probes, 'probe')}; {last}"


def _times(n: int, noun: str) -> str:
    plural = noun + ("es" if noun.endswith("s") else "s")
    return f"{n} {noun if n == 1 else plural}"
