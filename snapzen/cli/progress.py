"""Backfill progress on a terminal: a rich bar over the tally of
snapzen.commands.backfill_progress (off a terminal, its JSON log lines are used instead)."""

from __future__ import annotations

from typing import Any

from snapzen.commands.backfill_progress import Tally


class RichProgress(Tally):
    """A bar that fits 80 columns; the description carries the day and the live counts."""

    def __init__(self, console: Any = None) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        # Log lines go to a file while the bar is drawn (log_file); anything else written to
        # stderr meanwhile is printed above the bar by rich, not through it.
        self.bar = Progress(
            "{task.description}", BarColumn(bar_width=20), MofNCompleteColumn(),
            TimeRemainingColumn(), console=console or Console(stderr=True),
        )  # fmt: skip
        self.task: Any = None

    def _describe(self) -> str:
        where = f"{self.day} " if self.day else ""
        return f"{where}fetched {self.fetched:,} created {self.created:,}"

    def changed(self) -> None:
        self.bar.update(self.task, completed=self.done, description=self._describe())

    def start(self, total: int, skipped: int) -> None:
        super().start(total, skipped)
        self.bar.start()
        self.task = self.bar.add_task(self._describe(), total=total, completed=skipped)

    def finish(self) -> None:
        self.changed()
        self.bar.stop()
