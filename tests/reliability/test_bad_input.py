"""Case 19: bad input is rejected before any I/O, with one line and the usage exit code.

The outputs file used here points every endpoint — the AWS regions, Route53, DNS and both
PostgreSQL clusters — at one recording proxy, so "before any I/O" is checked for real: after each
rejected command the proxy has seen no connection at all.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.commands import backup
from scripts.commands import backups
from scripts.commands import cutover
from scripts.commands import drill
from scripts.commands import failback
from scripts.commands import restore
from scripts.commands import verify
from scripts.common import Exit
from tests.support.faultproxy import FaultProxy

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "outputs.json"
SHA = "orders-20261124T093000000000Z-a1b2c3"


@pytest.fixture(scope="module")
def tripwire():
    with FaultProxy("http://127.0.0.1:9") as proxy:
        yield proxy


def outputs(tmp_path: Path, proxy: FaultProxy, **changes) -> str:
    doc = json.loads(FIXTURE.read_text())
    cluster = {"host": "127.0.0.1", "port": proxy.port, "dataDir": str(tmp_path)}
    doc["sandbox"] = {"stateDir": str(tmp_path), "awsEndpoints": {r: proxy.url for r in ("us-east-1", "us-west-2", "route53")},
                      "dns": {"host": "127.0.0.1", "port": proxy.port}, "superuser": "postgres", "appUser": "app",
                      "passfile": str(tmp_path / "pgpass"), "clusters": {"primary": cluster, "dr": cluster}}
    for path, value in changes.items():
        cur = doc
        *parents, last = path.split("__")
        for part in parents:
            cur = cur[part]
        cur[last] = value
    out = tmp_path / "outputs.json"
    out.write_text(json.dumps(doc))
    return str(out)


DSN = "host=127.0.0.1 dbname=orders user=u password=s3cret-never-shown"
CASES = [
    ("backup id with ../", restore, ["--target", DSN, "--backup", "../../etc/passwd", "--yes"], "is not a backup id", {}),
    ("backup id with / (verify)", verify, ["--backup", f"{SHA}/../x"], "is not a backup id", {}),
    ("unknown region flag", restore, ["--target", DSN, "--latest", "--from-region", "mars", "--yes"], "invalid choice", {}),
    ("unknown region in outputs", backup, ["--tier", "daily"], "is not an AWS region", {"regions__dr": "moon-1"}),
    ("malformed bucket name", backups, ["list"], "is not a valid bucket name", {"vault__primary__bucket": "Bad_Bucket..x"}),
    ("unparseable target DSN", restore, ["--target", "not a dsn === x", "--latest", "--yes"],
     "not a valid PostgreSQL connection string", {}),
    ("unparseable source DSN", backup, ["--tier", "daily", "--source", "host=x port=== y"],
     "not a valid PostgreSQL connection string", {}),
    ("wrong-version outputs", verify, [], "contractVersion is 2", {"contractVersion": 2}),
    ("unknown scenario", drill, ["--scenario", "meteor-strike"], "invalid choice", {}),
    ("unknown side", cutover, ["--to", "mars", "--yes"], "invalid choice", {}),
    ("unknown side (failback)", failback, ["--to", "moon", "--yes"], "invalid choice", {}),
    ("naive --before", restore, ["--target", DSN, "--before", "2026-11-24T10:00:00", "--yes"], "no time zone", {}),
    ("system database target", restore, ["--target", "host=127.0.0.1 dbname=postgres", "--latest", "--yes"],
     "system database", {}),
    ("bad --into-schema", restore, ["--target", DSN, "--latest", "--tables", "t", "--into-schema", "x;drop", "--yes"],
     "not a plain identifier", {}),
]


@pytest.mark.parametrize("name, module, argv, words, changes", CASES, ids=[c[0] for c in CASES])
def test_case19_rejected_before_any_io(tripwire, tmp_path, capsys, name, module, argv, words, changes):
    before = tripwire.connections
    rc = module.main(["--outputs", outputs(tmp_path, tripwire, **changes), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == Exit.USAGE, err
    assert err and words in err[-1] and "error" in err[-1], err
    assert not [line for line in err if not line.startswith(("usage:", " ", "pilotlight"))], err  # one line (+ usage)
    assert "s3cret-never-shown" not in "\n".join(err) and "Traceback" not in "\n".join(err)
    assert tripwire.connections == before, f"{name}: the command touched the network before rejecting its input"


@pytest.mark.parametrize("module, argv", [(backup, ["--tier", "daily"]), (restore, ["--target", DSN, "--latest"]),
                                          (verify, []), (drill, ["--scenario", "ransomware"]), (backups, ["list"])])
def test_case19_missing_outputs_file_is_one_line(tmp_path, capsys, module, argv):
    assert module.main(["--outputs", str(tmp_path / "nope.json"), *argv]) == Exit.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "outputs file not found" in err[0], err
