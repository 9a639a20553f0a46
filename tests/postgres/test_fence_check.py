"""The switchover fence's check: what it counts as a breach, on a real PostgreSQL.

A fenced database still commits autovacuum's transactions; only a client session reaching it
means the fence did not hold.
"""
import time

import pytest
from psycopg import sql

from scripts.postgres import replication
from scripts.postgres.replication import ClientActivity

pytestmark = pytest.mark.integration


def _xact_commit(conn, name: str) -> int:
    conn.execute("select pg_stat_clear_snapshot()")
    return conn.execute("select xact_commit from pg_stat_database where datname = %s", (name,)).fetchone()[0]


def test_a_new_session_or_one_still_there_is_a_breach_and_nothing_else_is():
    fenced = ClientActivity(established=10, present=0)
    assert ClientActivity(10, 0).joined_since(fenced) == 0
    assert ClientActivity(12, 0).joined_since(fenced) == 2
    assert ClientActivity(10, 1).joined_since(fenced) == 1


def test_autovacuum_commits_in_a_fenced_database_do_not_fail_the_fence(sandbox):
    c = sandbox.reload()
    db = c.database()
    with replication.connect(c, db, "primary", dbname=db.db_name) as app:
        app.execute("create table fence_autovac (n int) with (autovacuum_analyze_threshold = 0,"
                    " autovacuum_analyze_scale_factor = 0, autovacuum_vacuum_threshold = 0,"
                    " autovacuum_vacuum_scale_factor = 0)")
        app.execute("insert into fence_autovac select generate_series(1, 1000)")
        app.execute("delete from fence_autovac where n % 2 = 0")
    admin = replication.connect(c, db, "primary", dbname="postgres")
    admin.execute("alter system set autovacuum_naptime = 1")
    admin.execute("select pg_reload_conf()")
    try:
        replication.fence(c, db, "primary")
        before = replication.client_activity(c, db, "primary")
        commits = _xact_commit(admin, db.db_name)
        deadline = time.monotonic() + 60
        while _xact_commit(admin, db.db_name) == commits and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _xact_commit(admin, db.db_name) > commits, "autovacuum never ran in the fenced database"
        assert replication.client_activity(c, db, "primary").joined_since(before) == 0
    finally:
        admin.execute("alter system reset autovacuum_naptime")
        admin.execute("select pg_reload_conf()")
        replication.unfence(c, db, "primary")
        with replication.connect(c, db, "primary", dbname=db.db_name) as app:
            app.execute("drop table fence_autovac")
        admin.close()


def test_a_session_that_got_in_after_the_fence_and_left_is_a_breach(sandbox):
    c = sandbox.reload()
    db = c.database()
    try:
        replication.fence(c, db, "primary")
        before = replication.client_activity(c, db, "primary")
        with replication.connect(c, db, "primary", dbname="postgres") as admin:
            admin.execute(sql.SQL("alter database {} allow_connections true").format(sql.Identifier(db.db_name)))
        with replication.connect(c, db, "primary", dbname=db.db_name) as late:
            late.execute("select 1")
        with replication.connect(c, db, "primary", dbname="postgres") as admin:
            admin.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(db.db_name)))
        deadline = time.monotonic() + 10
        while replication.client_activity(c, db, "primary").joined_since(before) == 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert replication.client_activity(c, db, "primary").joined_since(before) == 1
    finally:
        replication.unfence(c, db, "primary")
