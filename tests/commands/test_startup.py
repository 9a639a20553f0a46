"""Start-up: `--version` and `--help` load none of the heavy libraries (the CLI imports them where a command needs them).

Each case runs in a fresh interpreter, so nothing an earlier test imported can hide an import.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore", "psycopg", "rich", "cryptography", "zstandard", "pulumi", "pulumi_aws")
PROBE = """
import contextlib, io, json, sys
from scripts import cli
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = cli.main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "loaded": sorted({m.split('.')[0] for m in sys.modules} & set(%r))}))
""" % (HEAVY,)


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["backups", "--help"], ["backups", "list", "--help"]])
def test_version_and_help_load_no_heavy_library(argv):
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["code"] == 0 and found["loaded"] == [], found


def test_backup_and_restore_engines_load_no_terminal_or_dns_library_they_do_not_use():
    """A scheduled backup (no terminal, no resolver in the contract) never pays for rich's bars or dnspython:
    they load where a bar is drawn or a resolver is named."""
    probe = ("import json, sys; import scripts.vault.backup, scripts.vault.restore; "
             "print(json.dumps(sorted(m for m in ('rich', 'dns.resolver') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
