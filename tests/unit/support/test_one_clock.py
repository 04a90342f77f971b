"""One clock: every wall-clock reading in snapzen/ goes through snapzen.support.clock, so
SNAPZEN_CLOCK_OFFSET_SECONDS (and a test's injected clock) moves the whole program; and the
clock's formats read back what they write."""

from __future__ import annotations

import ast
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from snapzen.support import clock

PACKAGE = Path(__file__).resolve().parents[3] / "snapzen"
CLOCK_MODULE = PACKAGE / "support" / "clock.py"
# The sandbox emulates Zendesk's and SnapEngage's own clocks (which snapzen's offset must not
# move); a line that reads one says so with this comment.
REMOTE_CLOCK = "the emulated service's own clock"
# (owner, attribute) pairs that read the wall clock; time.monotonic (durations) is fine.
WALL_CLOCK_READS = {
    ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
    ("time", "time"), ("time", "time_ns"),
}  # fmt: skip


def wall_clock_reads(path: Path, root: Path = PACKAGE) -> list[str]:
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
        if (name, node.attr) not in WALL_CLOCK_READS:
            continue
        line = lines[node.lineno - 1]
        if path.is_relative_to(root / "sandbox") and REMOTE_CLOCK in line:
            continue
        found.append(f"{path.relative_to(root.parent)}:{node.lineno}: {line.strip()}")
    return found


def test_wall_clock_read_only_through_support_clock() -> None:
    offenders = [
        hit
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != CLOCK_MODULE
        for hit in wall_clock_reads(path)
    ]
    assert offenders == [], "read the time through snapzen.support.clock:\n" + "\n".join(offenders)


def test_the_rule_catches_a_direct_reading(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "import datetime as dt\nimport time\nfrom datetime import UTC, datetime\n"
        "a = datetime.now(UTC)\nb = dt.datetime.utcnow()\nc = time.time()\nd = time.monotonic()\n"
    )
    hits = sorted(wall_clock_reads(sneaky, root=tmp_path), key=lambda h: int(h.split(":")[1]))
    assert [hit.rsplit(": ", 1)[1] for hit in hits] == [
        "a = datetime.now(UTC)", "b = dt.datetime.utcnow()", "c = time.time()",
    ]  # fmt: skip


def test_offset_moves_now_and_today(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(clock.OFFSET_VARIABLE, str(3 * 86400))
    ahead = clock.now() - datetime.now(UTC)
    assert timedelta(days=3) - timedelta(minutes=1) < ahead < timedelta(days=3, minutes=1)
    assert clock.today() >= date.today() + timedelta(days=2)
    monkeypatch.setenv(clock.OFFSET_VARIABLE, "soon")
    with pytest.raises(ValueError, match=clock.OFFSET_VARIABLE):
        clock.now()


def test_format_and_parse_agree() -> None:
    moment = datetime(2026, 3, 10, 14, 5, 9, 987654, tzinfo=UTC)
    assert clock.format(moment) == "2026-03-10T14:05:09Z"
    assert clock.parse(clock.format(moment)) == moment.replace(microsecond=0)
    assert clock.format_millis(moment) == "2026-03-10T14:05:09.987Z"
    assert clock.format_compact(moment) == "20260310T140509Z"
    # Another zone is written in UTC; a time read with no zone is UTC.
    paris = moment.astimezone(timezone(timedelta(hours=1)))
    assert clock.format(paris) == "2026-03-10T14:05:09Z"
    assert clock.parse("2026-03-10T14:05:09") == moment.replace(microsecond=0)
    assert clock.parse("2026-03-10T15:05:09+01:00") == moment.replace(microsecond=0)
    assert clock.parse_optional("") is None
    with pytest.raises(ValueError):
        clock.parse("yesterday")


def test_snapengage_formats() -> None:
    assert clock.snapengage_day(date(2026, 3, 1)) == "2026-03-01"
    seconds = datetime(2026, 3, 1, 12, tzinfo=UTC).timestamp()
    assert clock.from_epoch(seconds) == clock.from_epoch(seconds * 1000)
    assert clock.format(clock.from_epoch(seconds)) == "2026-03-01T12:00:00Z"
