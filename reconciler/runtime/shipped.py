"""Where a re-attached run's output resumes: which of the lines an infrastructure replays were shipped already.

Owns the rule a worker that re-attaches to a run's infrastructure (after a restart) uses to ship no output line
twice: the infrastructure replays its output from the start, each line dated by the infrastructure's clock;
the lines the worker's earlier life shipped carry those same dates. A replayed line dated before the last
shipped date was shipped; one dated exactly then was shipped if a shipped line with that date has its text
(dates are only as fine as microseconds, so a few lines may share one). Lines the worker wrote itself (stream
`wp`) are dated by the worker's clock and take no part.

Pure: no store, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from reconciler.model import LogLine


def as_utc(moment: datetime) -> datetime:
    """Stores may hand times back without their offset; they are UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@dataclass
class ShippedOutput:
    next_seq: int = 0  # where the run's log numbering continues
    until: datetime | None = None  # the date of the last shipped line of output
    at_until: list[str] = field(default_factory=list)  # the texts shipped with exactly that date

    @classmethod
    def from_lines(cls, lines: Iterable[LogLine]) -> ShippedOutput:
        shipped = cls()
        for line in lines:
            shipped.next_seq = max(shipped.next_seq, line.seq + 1)
            if line.stream == "wp":
                continue
            stamp = as_utc(line.timestamp)
            if shipped.until is None or stamp > shipped.until:
                shipped.until, shipped.at_until = stamp, [line.message]
            elif stamp == shipped.until:
                shipped.at_until.append(line.message)
        return shipped

    def covers(self, text: str, timestamp: datetime | None) -> bool:
        """True when this replayed line was shipped before (each shipped line covers one replayed line)."""
        if self.until is None or timestamp is None:
            return False
        stamp = as_utc(timestamp)
        if stamp < self.until:
            return True
        if stamp == self.until and text in self.at_until:
            self.at_until.remove(text)
            return True
        return False
