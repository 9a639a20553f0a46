"""Copy-back from a point-in-time restored cluster (real PostgreSQL PITR in the sandbox) into the live database."""
from __future__ import annotations

import time

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from scripts.common import Refused, UsageError
from scripts.postgres.dsn import side_dsn
from scripts.pitr import copyback
from scripts.sandbox import pitr


def _live(handle):
    return side_dsn(handle.contract, "primary", handle.contract.database(), superuser=True)


def _rows(dsn, query):
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(query).fetchall()


@pytest.fixture(scope="module")
def damaged(module_sandbox):
    """Orders as they were at T, then rows deleted and others corrupted after T; a cluster restored to T."""
    state, live = module_sandbox.state, _live(module_sandbox)
    good = _rows(live, "select id, amount, token from orders order by id")
    with psycopg.connect(live, autocommit=True) as conn:
        at = conn.execute("select clock_timestamp()").fetchone()[0]
        time.sleep(0.2)
        conn.execute("delete from orders where id % 10 = 0")
        conn.execute("update orders set token = 'corrupted' where id % 7 = 0")
        conn.execute("insert into customers (name, email) values ('after', 'after@example.com')")
    deadline = time.monotonic() + 30
    while (pitr.window(state, state.regions["primary"], "primary").latest < at) and time.monotonic() < deadline:
        time.sleep(0.2)
    restored = pitr.restore(state, state.regions["primary"], "primary", "copyback-source", at)
    source = make_conninfo(host="127.0.0.1", port=restored.port, dbname="orders", user="postgres",
                           passfile=str(state.state_dir / "pgpass"))
    yield module_sandbox, live, source, good
    pitr.remove_restored(state, restored.name)


def test_copy_back_restores_deleted_rows_without_touching_the_others(damaged):
    handle, live, source, good = damaged
    corrupted_before = _rows(live, "select id, token from orders where token = 'corrupted' order by id")
    done = copyback.copy_back(source, live, ["orders"], "pitr_missing", None, "t1")
    assert done.inserted == {"public.orders": len([r for r in good if r[0] % 10 == 0])}
    assert _rows(live, "select id, token from orders where token = 'corrupted' order by id") == corrupted_before
    assert _rows(live, "select count(*) from customers where email = 'after@example.com'") == [(1,)]
    assert done.staged == {"pitr_missing.orders": len(good)}


def test_overwrite_with_a_condition_replaces_only_the_chosen_rows(damaged):
    handle, live, source, good = damaged
    done = copyback.copy_back(source, live, ["public.orders"], "pitr_fix", "s.id % 7 = 0", "t2", overwrite=True)
    assert done.inserted["public.orders"] == len([r for r in good if r[0] % 7 == 0 and r[0] % 10 != 0])
    assert _rows(live, "select id, amount, token from orders order by id") == good


def test_an_existing_schema_or_a_table_without_key_is_refused_before_anything_is_copied(damaged):
    handle, live, source, _ = damaged
    with pytest.raises(Refused, match="schema 'pitr_fix' already exists"):
        copyback.copy_back(source, live, ["orders"], "pitr_fix", None, "t3")
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute("create table if not exists keyless (v text)")
    with pytest.raises(UsageError, match="has no primary key"):
        copyback.copy_back(source, live, ["keyless"], "pitr_other", None, "t4")
    with pytest.raises(UsageError, match="does not exist in the live database"):
        copyback.copy_back(source, live, ["nope"], "pitr_other", None, "t5")
    assert _rows(live, "select count(*) from pg_namespace where nspname = 'pitr_other'") == [(0,)]
