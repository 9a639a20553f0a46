"""The tools image: built for real (podman, a local Debian base), then a backup and a restore run INSIDE it.

Fails loudly, never skips, when the image cannot be built: the scheduled jobs run nothing else.
Every container runs with ``--rm`` and a timeout on the private storage root, and the module
removes whatever is left (``podman rm -f --all``) even when a test fails.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

# A cold build (base rootfs, apt, pip) takes minutes on a fresh CI machine: more than the default per-test timeout.
pytestmark = pytest.mark.timeout(1500)
ROOT = Path(__file__).resolve().parents[2]
TAG = "localhost/pilotlight:test"
STORE = Path(os.environ.get("PILOTLIGHT_IMAGE_ROOT", ROOT / ".pilotlight" / "containers"))


def podman(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["podman", "--root", str(STORE / "storage"), "--runroot", str(STORE / "run"),
                           "--runtime", "runc", "--storage-driver", "overlay", *args],
                          capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def image():
    build = subprocess.run([str(ROOT / "image" / "build.sh"), TAG], capture_output=True, text=True, timeout=1200,
                           env={**os.environ, "PILOTLIGHT_IMAGE_ROOT": str(STORE)})
    if build.returncode != 0:
        pytest.fail(f"the image did not build (exit {build.returncode}):\n{build.stderr[-3000:]}")
    try:
        yield TAG
    finally:
        podman("rm", "-f", "--all", timeout=120)


def run_in_image(image: str, mount: Path | None, *argv: str, entrypoint: str | None = None,
                 also: tuple[Path, ...] = ()) -> subprocess.CompletedProcess:
    """``podman run`` with the settings these machines need: host network, explicit ulimits, a timeout."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 32768)
    opts = ["run", "--rm", "--timeout", "300", "--init", "--network", "host",
            "--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]
    if mount is not None:
        # The sandbox's passfile is private to the user who started it (root in CI): run as that uid.
        opts += ["--user", f"{os.getuid()}:{os.getgid()}", "-e", "HOME=/tmp", "-v", f"{mount}:{mount}"]
        for path in also:
            opts += ["-v", f"{path}:{path}:ro"]
    if entrypoint:
        opts += ["--entrypoint", entrypoint]
    return podman(*opts, image, *argv, timeout=360)


def test_image_runs_the_cli_as_a_non_root_user_with_the_declared_pg_major(image):
    inspect = json.loads(podman("image", "inspect", image).stdout)[0]["Config"]
    assert inspect["User"] == "10001" and inspect["Entrypoint"] == ["pilotlight"]
    out = run_in_image(image, None, "--version", entrypoint="pg_dump")
    assert out.returncode == 0 and " 15." in out.stdout, out.stderr
    out = run_in_image(image, None, "--help")
    assert out.returncode == 0 and "backup" in out.stdout, out.stderr


def test_backup_and_restore_inside_the_container_against_the_sandbox(image, module_sandbox):
    contract = module_sandbox.contract
    outputs = module_sandbox.outputs_path
    backup = run_in_image(image, module_sandbox.state_dir, "backup", "--outputs", str(outputs), "--tier", "hourly", "--json")
    assert backup.returncode == 0, backup.stderr[-2000:]
    manifest = json.loads(backup.stdout)
    from scripts.postgres.dsn import side_dsn

    db = contract.databases[0]
    dsn = side_dsn(contract, "primary", dbname=db.db_name, superuser=True)
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r'").fetchone()[0]
        conn.execute("CREATE TABLE after_backup (id int)")
    # The host-side DSN logs in with a passfile this process wrote (the secret is never in a DSN): lend it.
    passfile = Path(conninfo_to_dict(dsn)["passfile"])
    restore = run_in_image(image, module_sandbox.state_dir, "restore", "--outputs", str(outputs), "--target",
                           dsn, "--backup", manifest["id"],
                           "--terminate-sessions", "--yes", "--json", also=(passfile.parent,))
    assert restore.returncode == 0, restore.stderr[-2000:]
    with psycopg.connect(dsn) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        after = conn.execute("SELECT count(*) FROM pg_class WHERE relkind = 'r'").fetchone()[0]
    assert "after_backup" not in tables and after == before


def test_a_task_reads_the_contract_from_its_environment(sandbox, monkeypatch, capsys):
    """ECS tasks get no file: the program puts the contract in PILOTLIGHT_OUTPUTS (components/jobs.py)."""
    from scripts.commands import status

    monkeypatch.setenv("PILOTLIGHT_OUTPUTS", sandbox.outputs_path.read_text())
    monkeypatch.chdir(sandbox.state_dir)  # no default outputs file here
    status.main(["--json"])
    assert json.loads(capsys.readouterr().out)
