"""API keys: created and revoked by ``nba keys``, checked on every API request.

A key reads ``nba_<key id>_<secret>``. Only the SHA-256 of the secret is stored (the secret
is 256 random bits, so a fast hash is enough; nothing to brute-force), in the decision log's
database so that every server sharing the log shares the keys. Checks read the database each
time: a revoked key stops working on the next request. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from nba.decision_log import DecisionLog, now_utc, to_text
from nba.exceptions import NBAError

SCOPES = ("recommend", "outcomes", "events", "admin", "metrics")
_KEY = re.compile(r"nba_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})")
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(text: str) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        raise NBAError(
            f"--scopes: unknown scope(s) {unknown} (choose from {', '.join(SCOPES)})"
            if unknown
            else f"--scopes: give at least one of {', '.join(SCOPES)}"
        )
    return scopes


def create_key(log: DecisionLog, scopes: tuple[str, ...], label: str | None = None) -> str:
    """Store a new key and return it (the only time its secret is seen)."""
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    log.execute_now(
        "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
        (key_id, _hash(secret), ",".join(scopes), label, to_text(now_utc())),
    )
    return f"nba_{key_id}_{secret}"


def key_id_of(text: str) -> str:
    """The key id of a full key, or the text itself if it already is an id."""
    m = _KEY.fullmatch(text)
    return m.group(1) if m else text


def revoke_key(log: DecisionLog, key_or_id: str) -> bool:
    """Revoke a key (by id or full key); ``False`` if there is no such active key."""
    changed = log.execute_now(
        "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
        (to_text(now_utc()), key_id_of(key_or_id)),
    )
    return changed > 0


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    scopes: tuple[str, ...]
    label: str | None
    created_at: str
    revoked_at: str | None


def list_keys(log: DecisionLog) -> list[KeyInfo]:
    return [
        KeyInfo(k, tuple(s.split(",")), label, created, revoked)
        for k, s, label, created, revoked in log.query(
            "SELECT key_id, scopes, label, created_at, revoked_at FROM api_keys "
            "ORDER BY created_at"
        )
    ]


_KEY_SQL = "SELECT secret_sha256, scopes FROM api_keys WHERE key_id = ? AND revoked_at IS NULL"


def verify(log: DecisionLog, presented: str) -> tuple[str, frozenset[str]] | None:
    """``(key_id, scopes)`` of a valid, unrevoked key; ``None`` otherwise."""
    m = _KEY.fullmatch(presented)
    return _check(m, log.query(_KEY_SQL, (m.group(1),)) if m else [])


async def verify_async(log: DecisionLog, presented: str) -> tuple[str, frozenset[str]] | None:
    """:func:`verify` for the event loop (PostgreSQL reads do not block it)."""
    m = _KEY.fullmatch(presented)
    return _check(m, await log.query_async(_KEY_SQL, (m.group(1),)) if m else [])


def _check(
    m: re.Match[str] | None, rows: list[tuple[Any, ...]]
) -> tuple[str, frozenset[str]] | None:
    key_id, secret = (m.group(1), m.group(2)) if m else ("", "")
    stored, scopes = rows[0] if rows else (_DUMMY_HASH, "")
    # Always one constant-time comparison, so a wrong id takes as long as a wrong secret.
    ok = hmac.compare_digest(stored, _hash(secret))
    if not rows or not ok:
        return None
    return key_id, frozenset(scopes.split(","))
