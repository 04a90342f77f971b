"""A timeline of one bench run, seen from the sandbox: every request (sent, answered, what),
every import job (created, done), and where the wall time went against the lower bound.

``sync_throughput.py --timeline FILE`` records it (the sandbox runs in the benchmark's process,
so its dispatch is wrapped there; snapzen is not touched), prints ``summary()`` and writes the
raw timeline to FILE as JSON.

The bound assumes the job cap is full from the first POST to the last job's end: jobs run in
``ceil(imports / cap)`` back-to-back waves of ``t_job``. With equal job durations the slot job
``i`` takes (jobs in creation order) is the one job ``i - cap`` freed, so the last job's
start is a chain: the chain's first job, then for each later link the gap between the job
that freed the slot finishing and the next one created. Each gap is split into
*detect* (job done -> the poll whose answer first showed it done) and *refill* (that poll's
answer -> the next job created: preparing and POSTing it). The wall time is then exactly

    wall = before first link + sum(gaps) + links x t_job + after the last job's end

and the summary prints each term.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Timeline:
    started: float  # time.time() when the CLI was started
    wall_s: float = 0.0
    # (sent, answered, kind, status), seconds after ``started``; kind: import, poll,
    # snapengage or the sandbox endpoint's name
    requests: list[tuple[float, float, str, int]] = field(default_factory=list)
    jobs: list[tuple[float, float]] = field(default_factory=list)  # import (created, done)


def record(app: Any) -> Callable[[float], Timeline]:
    """Wrap the sandbox app's dispatch to log every request; returns ``finish(started)``,
    which takes the log and the import jobs, timed from ``started`` (time.time())."""
    log: list[tuple[float, float, str, int]] = []
    lock = threading.Lock()
    inner = app.dispatch

    def dispatch(request: Any) -> Any:
        sent = time.time()
        response = inner(request)
        path = request.path
        if "create_many" in path and "imports" in path:
            kind = "import"
        elif "job_statuses" in path:
            kind = "poll"
        elif path.startswith("/snapengage/"):
            kind = "snapengage"
        else:
            kind = path.rsplit("/", 1)[-1]
        with lock:
            log.append((sent, time.time(), kind, response.status_code))
        return response

    app.dispatch = dispatch

    def finish(started: float, wall_s: float) -> Timeline:
        jobs = sorted(
            (job.created - started, job.done_at - started)
            for job in app.store.jobs.values()
            if job.kind == "import"
        )
        requests = sorted((s - started, a - started, k, c) for s, a, k, c in log)
        return Timeline(started, wall_s, requests, jobs)

    return finish


def write(timeline: Timeline, path: str) -> None:
    Path(path).write_text(json.dumps(asdict(timeline)), encoding="utf-8")


def summary(tl: Timeline, *, cap: int, job_s: float) -> str:
    jobs = tl.jobs
    if not jobs:
        return "  timeline: no import job"
    polls = sorted(a for _, a, kind, code in tl.requests if kind == "poll" and code == 200)
    posts = [(s, a) for s, a, kind, code in tl.requests if kind == "import"]
    pages = [a for _, a, kind, _ in tl.requests if kind == "snapengage"]

    def seen(done: float) -> float:
        """When the first poll answered after ``done`` showed the job done (or the end)."""
        return next((p for p in polls if p >= done), tl.wall_s)

    n = len(jobs)
    # The chain that set the last job's start: n-1, n-1-cap, ... down to a job < cap.
    chain = list(range(n - 1, -1, -cap))[::-1]
    gaps = []
    for i in chain[1:]:
        freed_done = jobs[i - cap][1]
        detected = seen(freed_done)
        created = jobs[i][0]
        gaps.append((i, created - freed_done, detected - freed_done, created - detected))
    last_done = max(d for _, d in jobs)
    last_seen = seen(last_done)
    # Every refill over all jobs (not only the chain's): slot freed -> refilled.
    all_detect = [seen(jobs[i - cap][1]) - jobs[i - cap][1] for i in range(cap, n)]
    all_refill = [jobs[i][0] - seen(jobs[i - cap][1]) for i in range(cap, n)]
    span = last_done - jobs[0][0]
    used = sum(d - c for c, d in jobs)
    # polls that found no job newly done
    done_times = sorted(d for _, d in jobs)
    idle_polls, k = 0, 0
    for p in polls:
        before = k
        while k < n and done_times[k] <= p:
            k += 1
        idle_polls += k == before
    first = jobs[chain[0]][0]
    lines = [
        f"  timeline ({n} import jobs, cap {cap}, job {job_s:g} s; seconds from the CLI's start)",
        f"    first SnapEngage page answered {pages[0] if pages else float('nan'):6.2f}; "
        f"last {pages[-1] if pages else float('nan'):6.2f}",
        f"    first job created {jobs[0][0]:6.2f}; job #{cap} (first of wave 2) "
        f"{jobs[cap][0] if n > cap else float('nan'):6.2f}; last created {jobs[-1][0]:6.2f}",
        f"    POSTs: {len(posts)}, mean {_mean([a - s for s, a in posts]):.3f} s each; "
        f"first wave of {min(cap, n)} created over {jobs[min(cap, n) - 1][0] - jobs[0][0]:.2f} s",
        f"    polls: {len(polls)} ({idle_polls} found no job newly done)",
        f"    job-cap occupancy first job -> last done: {used / (cap * span):.1%} "
        f"({used:.0f} of {cap * span:.0f} slot-s; the bound assumes "
        f"{n * job_s / (cap * _ceil_div(n, cap) * job_s):.1%}, every wave back to back)",
        f"    slot freed -> refilled over all {len(all_detect)} refills: detect mean "
        f"{_mean(all_detect):.2f} s (max {max(all_detect, default=0):.2f}), refill mean "
        f"{_mean(all_refill):.2f} s (max {max(all_refill, default=0):.2f})",
        f"    chain to the last job: #{' -> #'.join(str(i) for i in chain)}",
        f"      before its first link   {first:6.2f} s (start, fetch, stage, prepare, POST)",
    ]
    for i, gap, detect, refill in gaps:
        lines.append(
            f"      gap before #{i:<4d}       {gap:6.2f} s = detect {detect:.2f} + refill "
            f"{refill:.2f}"
        )
    lines += [
        f"      {len(chain)} jobs x t_job       {len(chain) * job_s:6.2f} s "
        f"(measured: {sum(jobs[i][1] - jobs[i][0] for i in chain):.2f})",
        f"      after the last job's end {tl.wall_s - last_done:6.2f} s = detect "
        f"{last_seen - last_done:.2f} + record, cursors, exit {tl.wall_s - last_seen:.2f}",
        f"      = wall {tl.wall_s:.2f} s",
    ]
    return "\n".join(lines)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)
