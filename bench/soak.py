"""`make soak`: a bounded loop of backup -> restore -> compare on a database that keeps changing.

Each round changes the sandbox's ``orders`` database (new customers and orders, updated
amounts, deleted orders), backs it up while a writer keeps inserting into ``soak_events``,
restores that backup into a new database and compares it with the source: every table except
``soak_events`` must be identical (checksum of all rows), and ``soak_events`` must hold exactly
the rows the backup's snapshot saw — a prefix of the source's, none missing, none extra.

    python -m bench.soak [--rounds 5] [--seconds 600]     (env: SOAK_ROUNDS, SOAK_SECONDS)

Exit 0 when every round matched, 1 on any mismatch or failed round.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

import psycopg
from psycopg import sql

from bench.dataset import drop
from bench.sandbox import bench_sandbox
from scripts.postgres import client as pg
from scripts.vault.backup import perform_backup
from scripts.common import PilotlightError
from scripts.vault.restore import perform_restore

SEED_ROWS = 2000
EVENTS = "public.soak_events"
CHECKSUM = "SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {} t"


def mutate(dsn: str, round_no: int) -> None:
    """A round's worth of application traffic: inserts, updates and deletes."""
    with psycopg.connect(dsn) as conn:
        conn.execute("""INSERT INTO customers (name, email)
                        SELECT 'soak ' || %(r)s || '-' || g, 'soak' || %(r)s || '-' || g || '@example.com'
                        FROM generate_series(1, 200) g""", {"r": round_no})
        conn.execute("""INSERT INTO orders (customer_id, amount)
                        SELECT id, round((random() * 500)::numeric, 2) FROM customers ORDER BY random() LIMIT 500""")
        conn.execute("UPDATE orders SET amount = amount + 1 WHERE id %% 7 = %(m)s", {"m": round_no % 7})
        conn.execute("DELETE FROM orders WHERE id IN (SELECT id FROM orders ORDER BY random() LIMIT 50)")


class Writer(threading.Thread):
    """Keeps inserting into soak_events while the backup runs (the snapshot must cut cleanly)."""

    def __init__(self, dsn: str):
        super().__init__(daemon=True)
        self.dsn, self.stop, self.rows, self.error = dsn, threading.Event(), 0, None

    def run(self) -> None:
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                while not self.stop.is_set():
                    conn.execute("INSERT INTO soak_events (payload) VALUES (md5(random()::text))")
                    self.rows += 1
                    time.sleep(0.002)
        except psycopg.Error as exc:
            self.error = str(exc).splitlines()[0]


def checksums(dsn: str, tables: list[str]) -> dict[str, tuple]:
    out = {}
    with psycopg.connect(dsn) as conn:
        for name in tables:
            schema, _, table = pg.split_name(name)
            out[name] = tuple(conn.execute(sql.SQL(CHECKSUM).format(sql.Identifier(schema, table))).fetchone())
    return out


def compare(source: str, restored: str, manifest_counts: dict[str, int]) -> list[str]:
    """Differences between the restored copy and the source; empty when they match."""
    tables = sorted(set(pg.tables(source)) - {EVENTS})
    before, after = checksums(source, tables), checksums(restored, tables)
    problems = [f"{t}: source {before[t]}, restored {after[t]}" for t in tables if before[t] != after[t]]
    with psycopg.connect(source) as src, psycopg.connect(restored) as dst:
        got = dst.execute("SELECT id, payload FROM soak_events ORDER BY id").fetchall()
        n = len(got)
        want = src.execute("SELECT id, payload FROM soak_events ORDER BY id LIMIT %s", (n,)).fetchall()
    if got != want:
        problems.append(f"{EVENTS}: the restored rows are not the first {n} of the source's")
    if n != manifest_counts.get(EVENTS):
        problems.append(f"{EVENTS}: restored {n} rows, the backup's snapshot had {manifest_counts.get(EVENTS)}")
    return problems


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make soak", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--rounds", type=int, default=int(os.environ.get("SOAK_ROUNDS", "5")))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", "600")),
                        help="stop starting new rounds after this long")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be >= 1 and --seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    t0 = time.monotonic()
    rounds: list[dict] = []
    with bench_sandbox(seed_rows=SEED_ROWS) as bench:
        contract = bench.contract
        db = contract.database()
        source = bench.dsn(db.db_name)
        with psycopg.connect(source, autocommit=True) as conn:
            conn.execute("CREATE TABLE soak_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload text)")
        for n in range(1, args.rounds + 1):
            if time.monotonic() - t0 > args.seconds:
                break
            started = time.monotonic()
            record = {"round": n}
            target = f"soak_restored_{n}"
            mutate(source, n)
            writer = Writer(source)
            writer.start()
            try:
                manifest = perform_backup(contract, "hourly", source)
            except PilotlightError as exc:
                record["error"] = f"backup: {exc}"
                manifest = None
            finally:
                writer.stop.set()
                writer.join()
            if manifest is not None:
                try:
                    perform_restore(contract, bench.dsn(target), backup_id=manifest.id, allow_rename=True)
                    record["mismatches"] = compare(source, bench.dsn(target), manifest.row_counts)
                    record["backup"] = manifest.id
                except (PilotlightError, psycopg.Error) as exc:
                    record["error"] = f"restore: {str(exc).splitlines()[0]}"
                finally:
                    drop(bench.dsn("postgres"), target)
            record["rowsWrittenDuringBackup"] = writer.rows
            record["seconds"] = round(time.monotonic() - started, 2)
            rounds.append(record)
            status = "ERROR " + record["error"] if "error" in record else (
                "MISMATCH " + "; ".join(record["mismatches"]) if record["mismatches"] else "match")
            print(f"round {n}: {status} ({record['seconds']} s, {writer.rows} rows written during the backup)",
                  flush=True)
    bad = [r for r in rounds if r.get("error") or r.get("mismatches")]
    summary = {"rounds": len(rounds), "mismatches": sum(len(r.get("mismatches") or []) for r in rounds),
               "failedRounds": len(bad), "seconds": round(time.monotonic() - t0, 1), "detail": rounds}
    if args.json:
        print(json.dumps(summary, indent=2))
    print(f"soak: {summary['rounds']} rounds, {summary['mismatches']} mismatches, {summary['failedRounds']} failed "
          f"rounds in {summary['seconds']} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
