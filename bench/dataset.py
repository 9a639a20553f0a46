"""The databases measured: ``pgbench -i -s N`` plus a table of realistic entropy.

pgbench's own rows are blank filler that compresses ~100x and would hide the cost of
compression, encryption and transfer, so each database also gets ``events``: random words, hex
tokens and numbers as text and jsonb, which zstd compresses 2-4x like real application data.
"""
from __future__ import annotations

import subprocess

import psycopg
from psycopg import sql

from scripts.postgres import client as pg
from scripts.postgres.dsn import with_dbname

ENTROPY_SQL = """
CREATE TABLE events (
    id bigint PRIMARY KEY,
    created_at timestamptz NOT NULL,
    body text NOT NULL,
    doc jsonb NOT NULL
);
WITH words AS (
    SELECT array_agg(md5(i::text)::text) AS w FROM generate_series(1, 512) i
)
INSERT INTO events
SELECT g,
       timestamptz '2026-01-01' + g * interval '37 seconds',
       (SELECT string_agg(left(w[1 + floor(random() * 512)::int], 3 + (g + k) % 7), ' ')
          FROM generate_series(1, 24) k) || ' ' || md5(random()::text),
       jsonb_build_object(
           'user', substr(md5(random()::text), 1, 12),
           'amount', round((random() * 10000)::numeric, 2),
           'status', (ARRAY['new', 'paid', 'shipped', 'refunded', 'cancelled'])[1 + g % 5],
           'ip', format('10.%s.%s.%s', g % 256, (g / 256) % 256, floor(random() * 256)::int),
           'tags', to_jsonb(ARRAY[w[1 + floor(random() * 512)::int], w[1 + floor(random() * 512)::int]]),
           'seen', floor(random() * 2e9)::bigint)
FROM generate_series(1, {rows}) g, words;
ANALYZE events;
"""


def create(admin_dsn: str, name: str, env: dict[str, str], scale: int, entropy_rows: int) -> dict:
    """(Re)create database ``name`` with pgbench data at ``scale`` and ``entropy_rows`` events."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    subprocess.run([pg.binary("pgbench"), "-i", "-q", "-I", "dtGvp", "-s", str(scale), name], env=env, check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with psycopg.connect(with_dbname(admin_dsn, name), autocommit=True) as conn:
        conn.execute(sql.SQL(ENTROPY_SQL).format(rows=sql.Literal(entropy_rows)))
        conn.execute("CHECKPOINT")
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        events = conn.execute("SELECT pg_total_relation_size('events')").fetchone()[0]
    return {"database": name, "scale": scale, "entropy_rows": entropy_rows,
            "database_mib": round(size / 2**20, 1), "events_mib": round(events / 2**20, 1)}


def drop(admin_dsn: str, name: str) -> None:
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
