"""Sync throughput: the real `snapzen backfill` CLI against the loopback sandbox.

    .venv/bin/python bench/sync_throughput.py --chats 10000 [--label after] [--write]

Starts a Sandbox (127.0.0.1 only) with a fixed per-request latency, a Zendesk rate limit, a
job duration and N chats over 4 widgets, then runs ``python -m snapzen backfill --since D
--until D`` as a subprocess with production settings (only paths, keys, the log level and
the consent sources are set), so the peak RSS measured is snapzen's own: psutil polling the
CLI process and any children, summed; not ``ru_maxrss``, which counts the
pre-exec fork of this 1 GB process as the child's. The CPU figure is likewise summed over
that process tree.

The workload is the one every row of RESULTS.md measures: the sandbox's controller is
established in the UK, so every chat is a restricted transfer and needs consent; with
consent_share 1 every chat carries an accepted ``gdpr_consent`` in one of the three places
SnapEngage keeps variables, and ``--consent-sources`` (default: all three) counts it wherever it
is, so every settled chat (92 %) becomes a ticket. Production counts only the visitor's page
(``javascript_variables``), which would send ~46 % of these chats.

Prints wall time, chats/s, Zendesk and SnapEngage requests per chat, 429s, peak RSS and the
lower bound on wall time implied by the rate limit, the latency and the job duration (see
``lower_bound``). With ``--write`` the run is upserted (by label and size) into the table of
the ``## Sync throughput`` section of bench/RESULTS.md; other sections, and this section's
``### Notes``, are left as they are.
"""

from __future__ import annotations

import argparse
import compileall
import contextlib
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import timeline as timeline_mod  # noqa: E402
from snapzen.sandbox import Sandbox, SandboxConfig  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
SECTION = "## Sync throughput"
LEDGER_KEY = "bench-ledger-key-0123456789abcdef"
PAGE_SIZE = 100  # SnapEngage page size (sandbox default, and the real API's)
BATCH = 100  # Zendesk create_many maximum
JOB_CAP = 30  # Zendesk's queued-or-running job cap
MAX_RUN_SECONDS = 3600.0  # the benchmark never waits longer than this for the CLI
RSS_POLL_SECONDS = 0.02


@dataclass
class Bound:
    tickets: int
    imports: int
    zendesk_min: int
    rate_s: float
    fetch_pages: int
    fetch_s: float
    cap_s: float
    job_s: float
    latency_s: float
    total_s: float


def lower_bound(
    tickets: int,
    pages_per_widget: list[int],
    *,
    rpm: int,
    latency_s: float,
    job_s: float,
    window_s: float = 60.0,
) -> Bound:
    """The wall time no client could beat on this workload.

    - Zendesk: at least ``imports = ceil(T/100)`` create_many calls and one job_statuses poll
      (``Z = imports + 1``; a job's results are read back only when its answer is in doubt,
      issue 25; v10-v11's rows read every job back and used ``Z = 2 x imports + 1``). The
      budget is a fixed
      window of R requests: the first R go at once, every further R needs one more window,
      so ``t_rate = (ceil(Z/R) - 1) * 60 s``.
    - Job cap: at most 30 jobs queued or running, each taking ``t_job``, so
      ``t_cap = (ceil(imports/30) - 1) * t_job`` before the last wave can start.
    - SnapEngage: a widget's pages are a chain (each next link comes from the page before it);
      widgets are independent, so ``t_fetch = max_w pages_w * L``.
    - These three overlap (pushing starts after the first page; rate and job waits run while
      fetching), so the bound is their maximum, plus the last job's own ``t_job`` and the
      latency of its submit and of the poll that sees it finished (``2L``):

          bound = max(t_rate, t_cap, t_fetch) + t_job + 2L
    """
    imports = math.ceil(tickets / BATCH)
    zendesk_min = imports + 1  # create_many per job; one poll
    rate_s = max(0, math.ceil(zendesk_min / rpm) - 1) * window_s
    cap_s = max(0, math.ceil(imports / JOB_CAP) - 1) * job_s
    fetch_pages = max(pages_per_widget, default=0)
    fetch_s = fetch_pages * latency_s
    total = max(rate_s, cap_s, fetch_s) + (job_s + 2 * latency_s if imports else 0.0)
    return Bound(
        tickets=tickets,
        imports=imports,
        zendesk_min=zendesk_min,
        rate_s=rate_s,
        fetch_pages=fetch_pages,
        fetch_s=fetch_s,
        cap_s=cap_s,
        job_s=job_s,
        latency_s=latency_s,
        total_s=total,
    )


@dataclass
class Run:
    label: str
    chats: int
    days: int
    wall_s: float
    exit_code: int
    fetched: int
    tickets: int
    zendesk_requests: int
    snapengage_requests: int
    responses_429: int
    duplicates: int
    peak_rss_mb: float
    bound: Bound
    zendesk_by_endpoint: dict[str, int]
    # The machine's 1-minute load average before and after the CLI ran: the bench shares
    # its two cores, and a figure means little without it.
    load: tuple[float, float] = (0.0, 0.0)
    cpu_s: float = 0.0  # snapzen process, user + system
    sandbox_cpu_s: float = 0.0  # the benchmark process (mostly the sandbox) during the run
    timeline: timeline_mod.Timeline | None = None  # with --timeline

    @property
    def chats_per_s(self) -> float:
        return self.chats / self.wall_s if self.wall_s else 0.0

    @property
    def ratio(self) -> float:
        return self.wall_s / self.bound.total_s if self.bound.total_s else math.inf


def _pages_per_widget(sb: Sandbox, since: str, until: str) -> list[int]:
    """SnapEngage pages one widget needs when fetched one UTC day at a time, as backfill does
    (a page holds 100 cases of one widget and one query)."""
    per: Counter[tuple[str, str]] = Counter()
    for case in sb.dataset.cases:
        day = datetime.fromtimestamp(case["created_at_milliseconds"] / 1000, UTC).date()
        if since <= day.isoformat() <= until:
            per[(case["widget_id"], day.isoformat())] += 1
    pages: Counter[str] = Counter()
    for (widget, _), n in per.items():
        pages[widget] += max(1, math.ceil(n / PAGE_SIZE))
    return list(pages.values())


def _run_cli(
    env: dict[str, str],
    args: list[str],
    profile: str | None = None,
    idle: bool = False,
    gil: bool = False,
) -> tuple[int, float, float, float, float, str, str]:
    """Run the CLI; returns (exit code, wall seconds, peak RSS MB, snapzen CPU seconds, this
    process's CPU seconds meanwhile (the sandbox serving it), stdout, stderr).

    The snapzen CPU figure is its user + system time at the last poll before it exited
    (within RSS_POLL_SECONDS of the end); under py-spy it is py-spy's own, so not comparable.

    With ``profile`` the CLI runs under ``py-spy record`` (flat raw stacks into that file);
    the RSS figure is then py-spy's, so profiled runs are not for the table."""
    command = [sys.executable, "-m", "snapzen", *args]
    if profile:
        spy = str(Path(sys.executable).with_name("py-spy"))
        extra = ["--idle", "--threads"] if idle else []
        # --gil samples only the thread holding the GIL: a CPU profile of the Python code,
        # without the threads that are merely waiting for the GIL.
        extra += ["--gil"] if gil else []
        command = [spy, "record", "--format", "raw", "-r", "200", *extra, "-o", profile, "--"]
        command += [sys.executable, "-m", "snapzen", *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        own_cpu = time.process_time()
        cpu = 0.0
        child = subprocess.Popen(command, env=env, stdout=out, stderr=err, cwd=ROOT)
        proc = psutil.Process(child.pid)
        peak = 0
        cpu_by_pid: dict[int, float] = {}
        deadline = started + MAX_RUN_SECONDS
        while child.poll() is None:
            if time.perf_counter() > deadline:
                child.kill()
                child.wait()
                raise SystemExit(f"snapzen backfill did not finish in {MAX_RUN_SECONDS:.0f} s")
            # The whole process tree: snapzen and its ticket worker (and multiprocessing's
            # resource tracker), summed, since together they are what the machine must hold.
            rss = 0
            with contextlib.suppress(psutil.Error):
                tree = [proc, *proc.children(recursive=True)]
                for member in tree:
                    with contextlib.suppress(psutil.Error):
                        rss += member.memory_info().rss
                        times = member.cpu_times()
                        cpu_by_pid[member.pid] = times.user + times.system
            peak = max(peak, rss)
            cpu = sum(cpu_by_pid.values())
            time.sleep(RSS_POLL_SECONDS)
        wall = time.perf_counter() - started
        sandbox_cpu = time.process_time() - own_cpu
        # Not getrusage(RUSAGE_CHILDREN).ru_maxrss: the child is forked from this process,
        # which holds the whole synthetic data set (about 1 GB at 100,000 chats), and that
        # pre-exec moment counted as the child's peak. psutil sees only the snapzen process.
        out.seek(0)
        err.seek(0)
        return (
            child.returncode,
            wall,
            peak / 2**20,
            cpu,
            sandbox_cpu,
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
        )


def run(args: argparse.Namespace) -> Run:
    # Chats end at today's midnight (UTC), so every one is settled and in a past day that the
    # backfill records as finished: the range is the `days` days before today.
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    cfg = SandboxConfig(
        chats=args.chats,
        widgets=args.widgets,
        days=args.days,
        seed=args.seed,
        eu_share=args.eu_share,
        consent_share=args.consent_share,
        long_transcripts=0,
        anchor=today - timedelta(seconds=1),
        latency_ms=args.latency_ms,
        rate_limit_per_minute=args.rpm,
        job_seconds=args.job_seconds,
        host="127.0.0.1",
    )
    since = (today - timedelta(days=args.days)).date().isoformat()
    until = (today - timedelta(days=1)).date().isoformat()
    print(f"generating {args.chats:,} chats over {args.widgets} widgets, {args.days} days ...")
    with Sandbox(cfg) as sb, tempfile.TemporaryDirectory(prefix="snapzen-bench-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SNAPZEN_")}
        env.update(sb.env())
        env.update(
            SNAPZEN_LEDGER__PATH=str(Path(tmp) / "ledger.db"),
            SNAPZEN_LEDGER__KEY=LEDGER_KEY,
            SNAPZEN_SECRETS_DIR=str(Path(tmp) / "no-secrets"),
            SNAPZEN_LOG__LEVEL="warning",
            SNAPZEN_CONSENT__SOURCES=args.consent_sources,
        )
        for item in args.set or []:
            name, _, value = item.partition("=")
            env[name] = value
        # `snapzen init` creates the ledger (no other command does); not timed.
        subprocess.run([sys.executable, "-m", "snapzen", "init"], env=env, check=True)
        pages = _pages_per_widget(sb, since, until)
        sb.reset_counters()  # the limiter's window and the counters start with the CLI
        sb.app.limiter = type(sb.app.limiter)(args.rpm, cfg.rate_window_seconds)
        # Byte-compiled first, as a deployment is (pip compiles what it installs): an editable
        # checkout run with PYTHONDONTWRITEBYTECODE set would compile every snapzen module at
        # each start of the CLI and of its worker (~60 ms each), a cost no install pays.
        compileall.compile_dir(ROOT / "snapzen", quiet=1)
        print(f"running snapzen backfill --since {since} --until {until} ...")
        finish = timeline_mod.record(sb.app) if args.timeline else None
        load_before = os.getloadavg()[0]
        cli_started = time.time()
        code, wall, rss, cpu, sandbox_cpu, stdout, stderr = _run_cli(
            env,
            ["backfill", "--since", since, "--until", until, "--progress-every", "3600"],
            args.py_spy,
            args.py_spy_idle,
            args.py_spy_gil,
        )
        load = (load_before, os.getloadavg()[0])
        state = sb.state()
        line = finish(cli_started, wall) if finish else None
        if line is not None:
            timeline_mod.write(line, args.timeline)
        if args.keep_log:
            Path(args.keep_log).write_text(stderr)
        if code not in (0, 3):
            print(stdout, stderr, sep="\n", file=sys.stderr)
            raise SystemExit(f"snapzen backfill exited {code}")
        requests: dict[str, int] = state["requests"]
        zendesk = {k: v for k, v in requests.items() if k.startswith("zendesk.")}
        fetched = _fetched(stdout)
        tickets = int(state["tickets_count"])
        bound = lower_bound(
            tickets,
            pages,
            rpm=args.rpm,
            latency_s=args.latency_ms / 1000,
            job_s=args.job_seconds,
            window_s=cfg.rate_window_seconds,
        )
        return Run(
            label=args.label,
            chats=args.chats,
            days=args.days,
            wall_s=wall,
            exit_code=code,
            fetched=fetched,
            tickets=tickets,
            zendesk_requests=sum(zendesk.values()),
            snapengage_requests=requests.get("snapengage.logs", 0),
            responses_429=int(state["responses_429"]),
            duplicates=len(state["duplicate_external_ids"]),
            peak_rss_mb=rss,
            bound=bound,
            zendesk_by_endpoint=zendesk,
            cpu_s=cpu,
            sandbox_cpu_s=sandbox_cpu,
            load=load,
            timeline=line,
        )


def _fetched(stdout: str) -> int:
    found = re.search(r"fetched (\d+)", stdout)
    return int(found.group(1)) if found else 0


def report(r: Run, args: argparse.Namespace) -> str:
    b = r.bound
    per = r.fetched or r.chats
    lines = [
        f"chats {r.chats:,} ({r.fetched:,} fetched, {r.tickets:,} tickets created), "
        f"{args.widgets} widgets, {r.days} days, latency {args.latency_ms} ms, "
        f"{args.rpm} requests/min, job {args.job_seconds:g} s   [{r.label}]",
        f"  wall time              {r.wall_s:8.1f} s   (exit {r.exit_code})",
        f"  chats per second       {r.chats_per_s:8.0f}",
        f"  zendesk req/ticket     {r.zendesk_requests / max(r.tickets, 1):8.4f}   (<= 0.012)",
        f"  zendesk requests/chat  {r.zendesk_requests / per:8.4f}   "
        f"({r.zendesk_requests:,}: {json.dumps(r.zendesk_by_endpoint, sort_keys=True)})",
        f"  snapengage req/chat    {r.snapengage_requests / per:8.4f}   "
        f"({r.snapengage_requests:,})",
        f"  429s received          {r.responses_429:8d}",
        f"  duplicate tickets      {r.duplicates:8d}",
        f"  peak RSS (snapzen)     {r.peak_rss_mb:8.1f} MB   (all its processes)",
        f"  CPU snapzen / sandbox  {r.cpu_s:8.1f} s / {r.sandbox_cpu_s:.1f} s   "
        f"({r.cpu_s / per * 1000:.2f} ms a chat in snapzen, all threads and processes)",
        f"  lower bound            {b.total_s:8.1f} s   = max(t_rate {b.rate_s:.1f}, "
        f"t_cap {b.cap_s:.1f}, t_fetch {b.fetch_s:.1f}) + t_job {b.job_s:g} + 2L "
        f"{2 * b.latency_s:.2f}",
        f"      imports = ceil({b.tickets:,}/100) = {b.imports}; Z = imports + 1 poll = "
        f"{b.zendesk_min}; t_rate = (ceil(Z/{args.rpm}) - 1) x 60 s; "
        f"t_cap = (ceil(imports/30) - 1) x t_job; t_fetch = {b.fetch_pages} pages x L",
        f"  wall / bound           {r.ratio:8.2f}x",
        f"  load average (1 min)   {r.load[0]:8.2f} before, {r.load[1]:.2f} after (2 CPUs)",
    ]
    if r.timeline is not None:
        lines.append(timeline_mod.summary(r.timeline, cap=JOB_CAP, job_s=args.job_seconds))
    return "\n".join(lines)


# ---------------------------------------------------------------- RESULTS.md

HEADER = "| run | chats | days | tickets | wall s | chats/s | bound s | wall/bound | ZD req/chat | SE req/chat | 429s | dupes | peak RSS MB |"  # noqa: E501
RULE = "|---|---|---|---|---|---|---|---|---|---|---|---|---|"


def _row(r: Run) -> str:
    per = r.fetched or r.chats
    return (
        f"| {r.label} | {r.chats:,} | {r.days} | {r.tickets:,} | {r.wall_s:.1f} | "
        f"{r.chats_per_s:.0f} | {r.bound.total_s:.1f} | {r.ratio:.2f}× | "
        f"{r.zendesk_requests / per:.4f} | {r.snapengage_requests / per:.4f} | "
        f"{r.responses_429} | {r.duplicates} | {r.peak_rss_mb:.0f} |"
    )


def _version(row: str) -> int:
    """The N of a row labelled "vN ..." (0 for any other label)."""
    found = re.match(r"v(\d+)\b", row.split("|")[1].strip())
    return int(found.group(1)) if found else 0


def write_results(r: Run, args: argparse.Namespace) -> None:
    """Upsert this run's row (by label and chats) into the section's table; keep the notes."""
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    found = pattern.search(text)
    old = found.group(0) if found else ""
    # Only the results table's rows (13 cells), not tables quoted in the notes further down.
    head = old.split("### Notes", 1)[0]
    rows = [
        line
        for line in head.splitlines()
        if line.startswith("| ") and "| run |" not in line and line.count("|") == 14
    ]
    # Text after the table (a dated section at the top of the part) stays where it is.
    lines = head.splitlines()
    last = max((i for i, line in enumerate(lines) if line.startswith("| ")), default=len(lines))
    after_table = "\n".join(lines[last + 1 :]).strip()
    key = f"| {r.label} | {r.chats:,} |"
    rows = [line for line in rows if not line.startswith(key)] + [_row(r)]
    # By version (v2 before v10), rows of one version in the order they were added.
    rows.sort(key=_version)
    notes = old[old.index("### Notes") :].rstrip("\n") if "### Notes" in old else ""
    section = [
        SECTION,
        "",
        f"`bench/sync_throughput.py` (real `snapzen backfill` CLI in a subprocess against the "
        f"loopback sandbox): {args.widgets} widgets, latency {args.latency_ms} ms per request, "
        f"{args.rpm} Zendesk requests/min, jobs take {args.job_seconds:g} s, sandbox eu_share "
        f"{args.eu_share:g}, consent_share {args.consent_share:g}, consent.sources "
        f"{args.consent_sources}, no long transcripts; "
        f"production settings otherwise. Last run {datetime.now(UTC):%Y-%m-%d}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs. The sandbox's controller is "
        "established in the UK, so every chat is a restricted transfer and needs consent; "
        "counting it from all three places SnapEngage keeps variables (`--consent-sources`, "
        "the default here) keeps the workload of every row (92 % of chats become tickets). "
        "With the production default (the visitor's page only) 10,000 chats give 4,607.",
        "",
        "Lower bound on wall time (what no client could beat on the workload):",
        "",
        "    imports = ceil(tickets / 100);  Z = 2 x imports (create_many, its read-back) + 1 poll",
        "    (rows before v10 had no read-back: their bound used Z = imports + 1)",
        "    t_rate  = (ceil(Z / R) - 1) x 60 s        fixed window of R requests/min",
        "    t_cap   = (ceil(imports / 30) - 1) x t_job  at most 30 jobs queued or running",
        "    t_fetch = max over widgets of its SnapEngage pages x L   (a widget's pages: a chain)",
        "    bound   = max(t_rate, t_cap, t_fetch) + t_job + 2L",
        "",
        "The three terms overlap (pushing starts after the first page; rate-limit and job waits",
        "run while fetching), so only the largest counts; the last job's own duration and the",
        "latency of its submit and of the poll that sees it finish come after all of them.",
        "Requests per chat are over every chat fetched (tickets are the eligible share).",
        "",
        HEADER,
        RULE,
        *rows,
        "",
    ]
    if after_table:
        section += [after_table, ""]
    if notes:
        section += [notes, ""]
    block = "\n".join(section)
    if found:
        text = text[: found.start()] + block + "\n" + text[found.end() :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    RESULTS.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--widgets", type=int, default=4)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--rpm", type=int, default=700)
    parser.add_argument("--job-seconds", type=float, default=1.0)
    parser.add_argument("--eu-share", type=float, default=0.6)
    parser.add_argument("--consent-share", type=float, default=1.0)
    parser.add_argument(
        "--consent-sources",
        default="javascript_variables,operator_variables,labels",
        help="consent.sources for the CLI (default: all three, so every chat is sent)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--label", default="current")
    parser.add_argument(
        "--set", action="append", metavar="SNAPZEN_X=V", help="extra env for the CLI"
    )
    parser.add_argument("--py-spy", metavar="FILE", help="profile the CLI with py-spy (raw)")
    parser.add_argument(
        "--keep-log", metavar="FILE", help="save the CLI's log (stderr) to FILE (see --set)"
    )
    parser.add_argument(
        "--py-spy-gil",
        action="store_true",
        help="with --py-spy: sample only the thread holding the GIL (CPU profile)",
    )
    parser.add_argument(
        "--py-spy-idle",
        action="store_true",
        help="with --py-spy: also sample waiting threads, one stack root per thread",
    )
    parser.add_argument(
        "--timeline",
        metavar="FILE",
        help="record every request and import job (sandbox side) into FILE (JSON) and print "
        "where the wall time went against the bound (bench/timeline.py)",
    )
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--json", action="store_true", help="also print the run as JSON")
    args = parser.parse_args()
    if not 1 <= args.days <= 59:
        parser.error("--days must be between 1 and 59 (SnapEngage keeps 60)")
    result = run(args)
    print(report(result, args))
    if args.json:
        print(json.dumps({**asdict(result), "chats_per_s": result.chats_per_s}, default=str))
    if args.write:
        write_results(result, args)
        print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
