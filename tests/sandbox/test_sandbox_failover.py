"""Destructive sandbox behaviour on fresh sandboxes: failover DNS, blocked regions, replacement, down."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import uuid
from urllib.parse import urlparse

import psycopg
import pytest

from sandbox_wait import wait_until
from scripts.aws import client
from scripts.postgres.dsn import side_dsn
from scripts.sandbox import control, lifecycle
from scripts.commands import sandbox as cli
from scripts.sandbox.state import pid_alive
from scripts.failover.service import resolve, service_dsn

pytestmark = pytest.mark.integration


def refused(url: str) -> bool:
    parsed = urlparse(url)
    try:
        socket.create_connection((parsed.hostname, parsed.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def dig_target(contract) -> str | None:
    if shutil.which("dig") is None:
        return None
    out = subprocess.run(["dig", "+short", f"@{contract.sandbox.dns_host}", "-p", str(contract.sandbox.dns_port),
                          contract.database().dns.record_name, "A"], capture_output=True, text=True, timeout=10)
    return out.stdout.split()[0].rstrip(".")


def test_primary_loss_flips_dns_and_blocked_regions_refuse(fresh_sandbox):
    c, state = fresh_sandbox.contract, fresh_sandbox.state
    db = c.database()
    assert resolve(c).side == "primary"

    control.kill_cluster(state, "primary")
    assert not control.is_running(state, "primary")
    flipped = wait_until(lambda: resolve(c).side == "dr" and resolve(c), timeout=15)
    assert flipped.target == db.dns.dr_target and flipped.port == c.sandbox.clusters["dr"].port
    assert dig_target(c) in (None, db.dns.dr_target)

    control.promote(state, "dr")
    assert control.is_in_recovery(state, "dr") is False
    with psycopg.connect(service_dsn(c), autocommit=True) as conn:
        conn.execute("INSERT INTO customers (name, email) VALUES ('after failover', 'after@example.com')")

    primary_region = c.regions["primary"]
    control.block_region(state, primary_region)
    assert refused(c.sandbox.aws_endpoints[primary_region])
    assert refused(c.sandbox.aws_endpoints["route53"])  # Route53's control plane lives in us-east-1
    assert client(c, "s3", "dr").head_bucket(Bucket=c.buckets["dr"].bucket)
    assert resolve(c).side == "dr"  # the DNS data plane survives the region
    health = control.health(state)
    assert health["daemon"]["proxies"][primary_region]["mode"] == "refuse"
    assert health["daemon"]["replicator"]["paused"] is True
    control.unblock_region(state, primary_region)
    assert not refused(c.sandbox.aws_endpoints[primary_region])

    control.reseed_as_replica(state, "primary", "dr")
    assert control.is_in_recovery(state, "primary") is True
    with psycopg.connect(side_dsn(c, "primary")) as conn:
        assert wait_until(lambda: conn.execute(
            "SELECT count(*) FROM customers WHERE name = 'after failover'").fetchone()[0]) == 1


def test_replication_pauses_while_the_dr_region_is_blocked(fresh_sandbox):
    c, state = fresh_sandbox.contract, fresh_sandbox.state
    key = f"daily/{uuid.uuid4().hex}"
    control.block_region(state, c.regions["dr"])
    client(c, "s3", "primary").put_object(Bucket=c.buckets["primary"].bucket, Key=key, Body=b"x",
                                          ChecksumAlgorithm="SHA256")
    assert wait_until(lambda: control.health(state)["daemon"]["replicator"]["paused"])
    control.unblock_region(state, c.regions["dr"])
    assert wait_until(lambda: client(c, "s3", "dr").head_object(Bucket=c.buckets["dr"].bucket, Key=key))


def test_up_replaces_a_dead_sandbox_and_down_leaves_nothing(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("sandbox-replace")
    up = ["up", "--state-dir", str(state_dir), "--seed-rows", "10", "-q"]
    try:
        assert cli.main(up) == 0
        first = control.load(state_dir)
        os.kill(first.daemon["pid"], signal.SIGKILL)  # moto follows it (parent-death signal)
        wait_until(lambda: not pid_alive(first.daemon["motoPid"]))
        assert cli.main(["status", "--state-dir", str(state_dir)]) == 1
        assert cli.main(up) == 0
        second = control.load(state_dir)
        assert second.daemon["pid"] != first.daemon["pid"]
        assert resolve(second.contract).side == "primary"
        pids = [second.daemon["pid"], second.daemon["motoPid"]]
        pids += [int((second.data_dir(side) / "postmaster.pid").read_text().split()[0]) for side in ("primary", "dr")]
        assert cli.main(["down", "--state-dir", str(state_dir)]) == 0
        assert not any(pid_alive(pid) for pid in pids)
        assert not (state_dir / "outputs.json").exists()
        assert not second.pgroot.exists()
        assert lifecycle.down(state_dir)["wasRunning"] is False
    finally:
        lifecycle.down(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)


def test_bad_input_gives_one_line_and_a_usage_exit(tmp_path, capsys):
    assert cli.main(["up", "--state-dir", str(tmp_path), "--config", str(tmp_path / "Pulumi.nope.yaml")]) == 2
    assert cli.main(["up", "--state-dir", str(tmp_path), "--seed-rows", "-1"]) == 2
    assert cli.main(["sideways"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("pilotlight sandbox: error: stack config:") and "Traceback" not in "".join(err)
    assert cli.main(["status", "--state-dir", str(tmp_path)]) == 1
    assert "sandbox down" in capsys.readouterr().out


def test_a_failed_up_cleans_up_everything_it_started(tmp_path_factory, monkeypatch, capsys):
    state_dir = tmp_path_factory.mktemp("sandbox-failed")
    seen = {}

    def broken_provision(*args, **kwargs):
        state = control.load(state_dir)
        seen["pids"] = [state.daemon_pid, state.daemon["motoPid"]]
        seen["pids"] += [int((state.data_dir(s) / "postmaster.pid").read_text().split()[0]) for s in ("primary", "dr")]
        seen["pgroot"] = state.pgroot
        raise RuntimeError("emulator exploded")

    monkeypatch.setattr(lifecycle, "provision", broken_provision)
    try:
        assert cli.main(["up", "--state-dir", str(state_dir), "--seed-rows", "1"]) == 1
        assert "emulator exploded" in capsys.readouterr().err
        assert len(seen["pids"]) == 4 and not any(pid_alive(pid) for pid in seen["pids"])
        assert not seen["pgroot"].exists() and not (state_dir / "state.json").exists()
    finally:
        lifecycle.down(state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
