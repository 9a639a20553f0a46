"""The sandbox's automated backups are real PostgreSQL PITR: archived WAL, base backups, recovery_target_time."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from scripts.sandbox import pitr
from scripts.sandbox import postgres as pg


def _commit(state, value: str) -> datetime:
    """Insert one row in its own transaction; the server's commit timestamp."""
    with pg.connect(state, "primary", dbname="orders") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS pitr_marks (v text PRIMARY KEY)")
        conn.execute("INSERT INTO pitr_marks VALUES (%s)", (value,))
        return conn.execute("SELECT pg_xact_commit_timestamp(xmin) FROM pitr_marks WHERE v = %s",
                            (value,)).fetchone()[0]


def _wait_window(state, region: str, covers: datetime, timeout: float = 30) -> pitr.Window:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pitr.window(state, region, "primary")
        if found and found.latest >= covers:
            return found
        time.sleep(0.2)
    raise AssertionError(f"{region} window never reached {covers}: {found}")


def _marks(state, restored: pitr.Restored) -> list[str]:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=restored.port, dbname="orders", user="postgres",
                         passfile=str(state.state_dir / "pgpass")) as conn:
        return [r[0] for r in conn.execute("SELECT v FROM pitr_marks ORDER BY v")]


@pytest.fixture(scope="module")
def pitr_sandbox(module_sandbox):
    state = module_sandbox.state
    first = _commit(state, "a-first")
    time.sleep(0.3)
    second = _commit(state, "b-second")
    return module_sandbox, first, second


def test_a_time_between_two_commits_restores_exactly_the_first_from_the_dr_copy(pitr_sandbox):
    handle, first, second = pitr_sandbox
    state = handle.state
    dr_region = state.regions["dr"]
    _wait_window(state, dr_region, second)
    between = first + (second - first) / 2
    restored = pitr.restore(state, dr_region, "primary", "orders-pitr-between", between)
    try:
        assert _marks(state, restored) == ["a-first"]
        assert restored.region == dr_region and restored.restored_to == pitr.iso(between)
    finally:
        pitr.remove_restored(state, restored.name)
    assert pitr.restored(state) == []


def test_the_dr_copy_lags_the_primary_regions_archive_by_the_copy_delay(pitr_sandbox):
    handle, _, _ = pitr_sandbox
    state = handle.state
    mark = _commit(state, "c-lag")
    primary = _wait_window(state, state.regions["primary"], mark, timeout=10)
    dr = pitr.window(state, state.regions["dr"], "primary")
    assert primary.latest >= mark
    assert dr is None or dr.latest < mark
    assert _wait_window(state, state.regions["dr"], mark).latest >= mark


def test_latest_restorable_time_restores_every_archived_commit(pitr_sandbox):
    handle, _, second = pitr_sandbox
    state = handle.state
    found = _wait_window(state, state.regions["primary"], second)
    restored = pitr.restore(state, state.regions["primary"], "primary", "orders-pitr-latest", None)
    try:
        assert "b-second" in _marks(state, restored)
        assert restored.restored_to == pitr.iso(found.latest) or restored.restored_to > pitr.iso(found.latest)
    finally:
        pitr.remove_restored(state, restored.name)


@pytest.mark.parametrize("where", ["before", "after"])
def test_a_time_outside_the_window_fails_with_one_line_naming_the_window(pitr_sandbox, where):
    handle, _, _ = pitr_sandbox
    state = handle.state
    region = state.regions["primary"]
    found = pitr.window(state, region, "primary")
    target = found.earliest - timedelta(minutes=5) if where == "before" else found.latest + timedelta(minutes=5)
    with pytest.raises(pitr.PitrError) as err:
        pitr.restore(state, region, "primary", f"orders-pitr-{where}", target)
    message = str(err.value)
    assert "\n" not in message
    assert f"outside the restorable window of primary in {region}" in message
    assert pitr.iso(found.earliest) in message
    assert pitr.restored(state) == [] and not (state.pgroot / "restored" / f"orders-pitr-{where}").exists()


def test_retention_drops_old_base_backups_and_the_wal_before_the_oldest_kept(pitr_sandbox):
    handle, _, _ = pitr_sandbox
    state = handle.state
    region = state.regions["primary"]
    pitr.base_backup(state, "primary")
    store = state.pgroot / "pitr" / region / "primary"
    before = sorted(p.name for p in (store / "base").iterdir())
    assert len(before) == 2
    cfg = pitr.settings(state)
    pitr.prune(state, cfg, datetime.now(timezone.utc) + timedelta(days=cfg.retention_days, seconds=1))
    after = sorted(p.name for p in (store / "base").iterdir() if not p.name.startswith("."))
    assert after == before[-1:]
    newest = pitr.read_json(store / "base" / after[0] / "backup.json")
    segs = sorted(seg.name for seg in (store / "wal").glob("*.gz"))
    assert all(s[8:24] >= newest["firstSegment"][8:] for s in segs), (segs, newest)


def test_with_the_primary_region_unreachable_the_dr_copy_still_restores_to_the_second(pitr_sandbox):
    from scripts.sandbox import control

    handle, _, _ = pitr_sandbox
    state = handle.state
    dr_region, primary_region = state.regions["dr"], state.regions["primary"]
    mark = _commit(state, "d-before-outage")
    _wait_window(state, dr_region, mark)
    control.block_region(state, primary_region)
    try:
        late = _commit(state, "e-during-outage")
        time.sleep(pitr.settings(state).copy_delay_seconds + 2)
        assert pitr.window(state, dr_region, "primary").latest < late  # the copy waits for the region
        restored = pitr.restore(state, dr_region, "primary", "orders-pitr-outage", mark)
        try:
            marks = _marks(state, restored)
            assert "d-before-outage" in marks and "e-during-outage" not in marks
        finally:
            pitr.remove_restored(state, restored.name)
    finally:
        control.unblock_region(state, primary_region)
    assert _wait_window(state, dr_region, late).latest >= late  # and catches up once it is back


def test_an_automated_base_backup_waits_while_a_replica_is_being_seeded_from_the_same_cluster(pitr_sandbox):
    """A re-seed's ``pg_basebackup -C`` and the keeper's base backup of one cluster never overlap: on PostgreSQL
    15 the other's checkpoint can invalidate the slot being created, and the re-seed failed under load."""
    import threading

    handle, _, _ = pitr_sandbox
    state = handle.state
    finished = threading.Event()
    worker = threading.Thread(target=lambda: (pitr.base_backup(state, "primary"), finished.set()))
    with pg.one_base_backup_at_a_time(state, "primary"):
        worker.start()
        assert not finished.wait(2), "the base backup ran while the cluster's turn was held"
    worker.join(120)
    assert finished.is_set()
