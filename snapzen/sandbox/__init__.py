"""Loopback emulator of the SnapEngage Logs API and the Zendesk ticket-import API.

Used by the demo, end-to-end tests and benchmarks::

    with Sandbox(SandboxConfig(chats=300, seed=1)) as sb:
        env = sb.env()   # point snapzen at it
        ...
        sb.state(), sb.tickets(), sb.truth()

Module map: ``config`` (settings), ``data`` (synthetic cases + truth), ``snapengage`` (the
Logs API), ``zendesk`` (the Zendesk account) with its endpoints in ``zendesk_api``,
``responses`` (request arguments, JSON bodies and errors), ``app`` (routing, rate budgets
and their headers, faults), ``server`` (``Sandbox``: the app on a threaded loopback
server, or with ``serve=False`` mounted in a requests session, no socket: unit and integration
tests; ``snapzen sandbox serve|dump``).
"""

from typing import TYPE_CHECKING, Any

from snapzen.sandbox.config import FAULT_KINDS, SandboxConfig

if TYPE_CHECKING:
    from snapzen.sandbox.server import Sandbox

__all__ = ["FAULT_KINDS", "Sandbox", "SandboxConfig"]


def __getattr__(name: str) -> Any:
    # The server pulls in werkzeug and faker (~0.25 s). Import it on first use so every
    # `snapzen` command (the CLI registers the sandbox sub-app) does not pay for it.
    if name == "Sandbox":
        from snapzen.sandbox.server import Sandbox

        return Sandbox
    raise AttributeError(name)
