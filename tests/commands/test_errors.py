"""Errors that name the fix, through ``main([...])``: connection failures, passfiles, what ran out, future times."""
from __future__ import annotations

import errno
import socket
from pathlib import Path

from scripts.commands import backup, restore
from scripts.vault import backup as backup_engine
from scripts.commands.parser import parser_for, run
from scripts.common import Exit

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "outputs.json"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_keeps_host_port_and_cause_on_one_line(capsys):
    port = closed_port()
    rc = backup.main(["--outputs", str(FIXTURE), "--tier", "daily",
                      "--source", f"host=127.0.0.1 port={port} dbname=orders user=postgres connect_timeout=2"])
    err = capsys.readouterr().err.strip()
    assert rc == Exit.NETWORK and len(err.splitlines()) == 1, err
    assert f'connection to server at "127.0.0.1", port {port} failed: Connection refused' in err
    assert "is the server running" in err


def test_a_missing_passfile_is_named_with_its_path(sandbox, tmp_path, capsys):
    cluster = sandbox.contract.sandbox.clusters["primary"]
    missing = tmp_path / "no-such-pgpass"
    rc = backup.main(["--outputs", str(sandbox.outputs_path), "--tier", "daily", "--source",
                      f"host={cluster.host} port={cluster.port} dbname=orders user=postgres passfile={missing}"])
    err = capsys.readouterr().err.strip()
    assert rc == Exit.USAGE, err
    assert f"the passfile {missing} (passfile= in the DSN) does not exist" in err and len(err.splitlines()) == 1


def test_a_future_before_says_it_means_latest(sandbox, capsys):
    backup_engine.perform_backup(sandbox.contract, "hourly")
    cluster = sandbox.contract.sandbox.clusters["primary"]
    target = (f"host={cluster.host} port={cluster.port} dbname=orders_future user=postgres "
              f"passfile={sandbox.contract.sandbox.passfile}")
    rc = restore.main(["--outputs", str(sandbox.outputs_path), "--target", target, "--before", "2999-01-01T00:00:00Z",
                       "--dry-run"])
    err = capsys.readouterr().err
    assert rc == Exit.OK
    assert "--before 2999-01-01T00:00:00Z is in the future" in err and "as --latest would" in err


def test_running_out_of_disk_says_what_ran_out_and_where(capsys):
    def body(args):
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/pilotlight-restore-x/dump")

    assert run(body, parser_for("restore", "test"), []) == Exit.FAILED
    err = capsys.readouterr().err.strip()
    assert err == ("pilotlight restore: error: out of disk space writing /tmp/pilotlight-restore-x/dump; "
                   "free space there or point TMPDIR at a larger disk")
