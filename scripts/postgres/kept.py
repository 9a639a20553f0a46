"""The copies a restore keeps: ``<target>_pre_restore_<UTC stamp>[_<n>]``, one per restore, until dropped.

A kept copy is the database as it was just before a restore swapped it out: what
``restore --rollback`` swaps back, and what piles up (each as big as the database) unless
``restore --drop-kept OLDER`` or ``status`` (which warns) keep it in check.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from psycopg import sql

KEPT = "_pre_restore_"
STAMP = "%Y%m%dT%H%M%SZ"
WARN_AT = 3  # status warns from this many kept copies of one database


def scratch_name(base: str, suffix: str) -> str:
    """``base + suffix`` within PostgreSQL's 63 characters; a cut base gets a hash of the whole name,
    so two targets sharing a long prefix never share scratch or kept names (nor drop each other's)."""
    if len(base) + len(suffix) <= 63:
        return base + suffix
    return f"{base[: 63 - len(suffix) - 7]}_{hashlib.sha256(base.encode()).hexdigest()[:6]}{suffix}"


def _pattern(target: str) -> re.Pattern:
    stem = scratch_name(target, f"{KEPT}00000000T000000Z")[: -len(f"{KEPT}00000000T000000Z")]
    return re.compile(re.escape(stem + KEPT) + r"(?P<stamp>\d{8}T\d{6}Z)(?:_\d+)?")


@dataclass(frozen=True)
class Kept:
    name: str
    kept_at: datetime
    bytes: int

    def to_dict(self) -> dict:
        return {"name": self.name, "keptAt": self.kept_at.isoformat().replace("+00:00", "Z"), "bytes": self.bytes}


def list_kept(conn, target: str) -> list[Kept]:
    """Kept copies of ``target`` on ``conn``'s server, newest first."""
    pattern, found = _pattern(target), []
    for name, size in conn.execute("SELECT datname, pg_database_size(oid) FROM pg_database").fetchall():
        m = pattern.fullmatch(name)
        if m:
            found.append(Kept(name, datetime.strptime(m["stamp"], STAMP).replace(tzinfo=timezone.utc), int(size)))
    return sorted(found, key=lambda k: (k.kept_at, k.name), reverse=True)


def drop(conn, kept: Kept) -> None:
    conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(kept.name)))
