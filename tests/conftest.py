from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
import typer.testing
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from snapzen.clients.origin import mounted
from snapzen.support.settings import Settings, load_settings
from tests import fakes
from tests.sync_parts import FakeClock

# No wall-clock deadlines in property tests: timing is measured in bench/, not asserted here,
# and a loaded 2-core CI machine must not turn a slow example into a failure.
# `make test` and CI run the "snapzen" profile: derandomized (the same examples every run, no
# example database), so a run passes or fails for the code, never for the seed. To hunt for new
# counterexamples, run with HYPOTHESIS_PROFILE=explore (random seeds, more examples) and turn
# what it finds into a plain regression test.
_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
hypothesis_settings.register_profile("snapzen", derandomize=True, database=None, **_COMMON)
hypothesis_settings.register_profile("explore", max_examples=1000, **_COMMON)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "snapzen"))


def _shape(app: typer.Typer) -> tuple[object, ...]:
    """What the Click tree of ``app`` is built from: its commands and groups, recursively."""
    groups = app.registered_groups
    return (
        tuple(id(c.callback) for c in app.registered_commands),
        tuple((g.name, _shape(g.typer_instance)) for g in groups if g.typer_instance),
        id(app.registered_callback.callback) if app.registered_callback else None,
    )


_BUILT: dict[int, tuple[typer.Typer, tuple[object, ...], Any]] = {}
_build_command = typer.main.get_command


def _built_command(app: typer.Typer) -> Any:
    """typer.main.get_command, built once per app and shape: Typer rebuilds the whole Click tree
    (~80 ms) on every CliRunner.invoke, and the suite invokes the CLI in-process over a
    thousand times. A Click command is reusable, as in any Click program; what a call depends
    on (arguments, environment, terminal width) is read when it is invoked."""
    shape = _shape(app)
    built = _BUILT.get(id(app))
    if built is None or built[0] is not app or built[1] != shape:
        built = (app, shape, _build_command(app))
        _BUILT[id(app)] = built
    return built[2]


typer.main.get_command = _built_command  # Typer.__call__ and test walks of the tree
typer.testing._get_command = _built_command  # CliRunner.invoke


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's SNAPZEN_* variables or /run/secrets."""
    for name in list(os.environ):
        if name.startswith("SNAPZEN_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SNAPZEN_SECRETS_DIR", str(tmp_path / "no-secrets"))
    # Required setting. A controller outside the EEA/UK (Art. 3(2): the visitor's country
    # decides), which most tests are written around; tests of the Art. 3(1) case (and of the
    # setting's absence) set or remove it themselves.
    monkeypatch.setenv("SNAPZEN_TRANSFER__CONTROLLER_COUNTRY", "US")
    # The notice the test pages show (tests.fakes.make_case sends its version and a receipt).
    monkeypatch.setenv("SNAPZEN_CONSENT__NOTICES", json.dumps(fakes.NOTICES))
    # A complete Art. 30 record: `ledger report` refuses without one (tests of that refusal
    # remove them).
    for name, value in fakes.RECORD_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def _reset_logging() -> Iterator[None]:
    """A CLI test points structlog at CliRunner's stderr, which is closed after invoke():
    every test starts and ends with structlog's defaults, so none logs to a closed stream."""
    import structlog

    structlog.reset_defaults()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def sync_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Environment for a sync against the in-process sandbox (the `apis` fixture), with its
    ledger created as `snapzen init` would; returns the ledger path."""
    ledger = fakes.create_ledger(tmp_path / "snapzen.db")
    values = {
        "SNAPZEN_SNAPENGAGE__BASE_URL": fakes.SE_BASE,
        "SNAPZEN_SNAPENGAGE__ORG_ID": fakes.ORG,
        "SNAPZEN_SNAPENGAGE__API_TOKEN": fakes.SE_TOKEN,
        "SNAPZEN_SNAPENGAGE__WIDGETS": "w1,w2",
        "SNAPZEN_ZENDESK__BASE_URL": fakes.ZD_BASE,
        "SNAPZEN_ZENDESK__EMAIL": fakes.ZD_EMAIL,
        "SNAPZEN_ZENDESK__API_TOKEN": fakes.ZD_TOKEN,
        "SNAPZEN_ZENDESK__JOB_POLL_SECONDS": "0.001",
        "SNAPZEN_ZENDESK__RECOVERY_GRACE_SECONDS": "0",
        "SNAPZEN_HTTP__BACKOFF_BASE_SECONDS": "0.001",
        "SNAPZEN_HTTP__MAX_WAIT_SECONDS": "0.01",
        "SNAPZEN_LEDGER__PATH": str(ledger),
        "SNAPZEN_LEDGER__KEY": fakes.LEDGER_KEY,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return ledger


@pytest.fixture
def settings(sync_env: Path) -> Settings:
    return load_settings()


@pytest.fixture
def apis() -> Iterator[fakes.SandboxApis]:
    """The sandbox app in-process behind fakes.BASE: every session snapzen builds (from the
    settings sync_env sets) mounts its adapter there."""
    sandbox = fakes.SandboxApis()
    with mounted(fakes.BASE + "/", sandbox.adapter):
        yield sandbox


@pytest.fixture
def engine_fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """The sync engine's monotonic clock and sleeps, faked for every Pipeline the test builds
    (through the CLI too): a pass waiting on jobs sleeps no real time, each sleep moves the
    clock on. For tests of what a pass does (with the sandbox's own job clock), not when."""
    from snapzen.sync.pipeline import Pipeline

    clock = FakeClock()
    defaults = Pipeline.__init__.__kwdefaults__
    assert defaults is not None and {"sleep", "monotonic"} <= set(defaults)
    monkeypatch.setitem(defaults, "monotonic", clock)
    monkeypatch.setitem(defaults, "sleep", clock.advance)
    return clock
