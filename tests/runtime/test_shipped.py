"""A re-attached run's replayed output: lines shipped before are skipped, even several with one date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reconciler.model import LogLine
from reconciler.runtime.shipped import ShippedOutput

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def line(seq: int, message: str, at: datetime, stream: str = "stdout") -> LogLine:
    return LogLine(run_id="r", seq=seq, message=message, timestamp=at, stream=stream)


def test_replayed_lines_up_to_the_last_shipped_one_are_skipped_and_numbering_continues() -> None:
    shipped = ShippedOutput.from_lines(
        [
            line(0, "worker started it", T0 + timedelta(hours=1), stream="wp"),  # the worker's clock: ignored
            line(1, "a", T0),
            line(2, "same", T0 + timedelta(seconds=1)),
            line(3, "b", T0 + timedelta(seconds=1)),
        ]
    )
    assert shipped.next_seq == 4
    replay = [("a", T0), ("same", T0 + timedelta(seconds=1)), ("b", T0 + timedelta(seconds=1))]
    replay += [("same", T0 + timedelta(seconds=1)), ("c", T0 + timedelta(seconds=2))]
    new = [text for text, at in replay if not shipped.covers(text, at)]
    # the second "same" of that microsecond was not shipped yet: only one shipped line covered one replayed line
    assert new == ["same", "c"]


def test_naive_times_from_a_store_are_utc_and_nothing_shipped_covers_nothing() -> None:
    shipped = ShippedOutput.from_lines([line(0, "a", T0.replace(tzinfo=None))])
    assert shipped.covers("a", T0)
    assert not ShippedOutput().covers("a", T0)
    assert not shipped.covers("undated", None)
