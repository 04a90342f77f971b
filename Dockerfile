# snapzen: `snapzen run` as a long-running service (default), or any other command, e.g.
#   docker run --rm -v snapzen-data:/data --env-file snapzen.env IMAGE init   (once: creates
#   the ledger; `init --adopt` when Zendesk already has snapzen's tickets)
#   docker run --rm -v snapzen-data:/data --env-file snapzen.env IMAGE sync
# The install step below is the same command as `make image-install`, which CI can run on
# machines without a container engine; tests/ops/test_image.py keeps the two in lockstep.

# ---- build: install the package and its dependencies into a self-contained venv
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY snapzen ./snapzen
# image-install
RUN python -m venv /opt/snapzen && /opt/snapzen/bin/pip install --no-cache-dir . && /opt/snapzen/bin/snapzen --help >/dev/null

# ---- runtime: the venv only; no compiler, no pip cache, no source tree
FROM python:3.11-slim-bookworm
ENV PATH=/opt/snapzen/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TZ=UTC \
    SNAPZEN_LEDGER__PATH=/data/snapzen.db
# Secrets: environment variables, or files in /run/secrets (the default secrets directory),
# named after the variable in lower case, e.g. /run/secrets/snapzen_zendesk__api_token.
# A fixed non-root uid/gid, so volume ownership is predictable across image rebuilds.
RUN groupadd --system --gid 10001 snapzen \
 && useradd --system --uid 10001 --gid snapzen --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin snapzen \
 && mkdir -p /data \
 && chown snapzen:snapzen /data
COPY --from=build /opt/snapzen /opt/snapzen
USER 10001:10001
WORKDIR /data
# The ledger (and its -wal/-shm and .lock files) lives here: keep it on a persistent volume.
VOLUME ["/data"]
# Reads the database only (no network, no lock): exit 1 with one line when unhealthy.
HEALTHCHECK --interval=1m --timeout=30s --start-period=10m --retries=3 \
    CMD ["snapzen", "status", "--check"]
# umask 077: everything snapzen creates under /data (ledger, -wal/-shm, backups, exports,
# checkpoints) is readable by its owner only; the code also sets 0600 on the files it makes.
ENTRYPOINT ["/bin/sh", "-c", "umask 077 && exec snapzen \"$@\"", "snapzen"]
CMD ["run"]
