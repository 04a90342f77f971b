"""Settings for a command: loaded (file, then environment), checked, logging set up, and every
secret registered with the log scrubber before anything can log it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from snapzen.support import log
from snapzen.support.settings import SECRET_FIELDS, Needs, Settings, load_settings


def load(
    config: Path | None, needs: Needs = Needs.ALL, level: Callable[[str], str] = str
) -> Settings:
    """``config``: the file (None: $SNAPZEN_CONFIG, if set); ``needs``: the sections that
    must be valid (snapzen.support.settings.Needs); ``level``: the log level to use, given
    the configured one (-v and -q move it)."""
    settings = load_settings(config, needs=needs)
    log.configure_logging(level(settings.log.level), settings.log.format)
    for section, name in SECRET_FIELDS:
        secret = getattr(getattr(settings, section), name)
        if secret is not None:
            log.register_secret(secret.get_secret_value())
    return settings
