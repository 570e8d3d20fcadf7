"""A reload that reaches every worker of ``nba serve --workers N``.

``POST /admin/reload`` is answered by one worker. It loads the new version itself and
counts the request up in the decision log's ``control`` table, which every worker shares;
each worker reads that counter once a second (one small read) and, when it has moved,
loads ``@champion`` (and ``@challenger``) too. So every worker answers with the new
version within about a second, without waiting for ``NBA_MODEL_POLL_SECONDS``.
"""

from __future__ import annotations

from nba.decision_log import DecisionLog

RELOAD = "model_reload"
_BUMP = (
    "INSERT INTO control (name, value) VALUES (?, 1) "
    "ON CONFLICT (name) DO UPDATE SET value = control.value + 1"
)
_READ = "SELECT value FROM control WHERE name = ?"


def request_reload(log: DecisionLog) -> None:
    """Tell every worker to load the registry's versions again (a committed write)."""
    log.execute_now(_BUMP, (RELOAD,))


async def reload_count(log: DecisionLog) -> int:
    """How many reloads were requested so far (0: none)."""
    rows = await log.query_async(_READ, (RELOAD,))
    return int(rows[0][0]) if rows else 0
