"""pgBackRest, the physical-backup peer for self-managed PostgreSQL: full backups with zstd, restore.

Set up on the benchmark sandbox's primary cluster: a Unix socket directory (the sandbox listens
on TCP only, pgBackRest connects through a socket), WAL archiving (a pgBackRest backup is only
consistent with its WAL), a restart, and a stanza. ``archive-push`` is the archive command only
while a pgBackRest backup runs; otherwise it is ``/bin/true``, so archiving the gigabytes of WAL
the other methods' restores write never steals CPU from their measurements. Everything runs as the cluster's OS user. It backs up the whole cluster, which holds
only the database under test (and the sandbox's tiny demo database) when it is measured.
``restore`` copies the files into an empty data directory; it does not start the server.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from bench.measure import Run, run_process
from bench.sandbox import Bench
from scripts.sandbox import control
from scripts.sandbox import postgres as sbpg

STANZA = "bench"


class PgBackRest:
    def __init__(self, bench: Bench, root: Path, process_max: int = 2):
        self.bench = bench
        self.root = root
        self.user = bench.state.os_user
        self.config = root / "pgbackrest.conf"
        self.repo = root / "repo"
        self.socket = root / "socket"
        self.process_max = process_max

    @staticmethod
    def available() -> str | None:
        """None when pgBackRest can run, else why not (installing it with apt-get if missing)."""
        if shutil.which("pgbackrest") is None:
            proc = subprocess.run(["apt-get", "install", "-y", "-q", "pgbackrest"], capture_output=True, text=True)
            if proc.returncode != 0 or shutil.which("pgbackrest") is None:
                tail = (proc.stderr.strip().splitlines() or ["apt-get failed"])[-1]
                return f"pgbackrest is not installed and apt-get could not install it ({tail})"
        return None

    def _cmd(self, *args: str) -> list[str]:
        return ["pgbackrest", f"--config={self.config}", f"--stanza={STANZA}", *args]

    def _run(self, *args: str) -> None:
        run_process(self._cmd(*args), user=self.user, env=self._env())

    def _env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "LC_ALL": "C.UTF-8"}

    def setup(self) -> None:
        state = self.bench.state
        for path in (self.root, self.repo, self.socket):
            path.mkdir(parents=True, exist_ok=True)
            sbpg.chown(path, self.user)
        self.config.write_text(
            "[global]\n"
            f"repo1-path={self.repo}\n"
            "repo1-retention-full=1\n"
            "compress-type=zst\n"
            f"process-max={self.process_max}\n"
            "start-fast=y\n"
            f"log-path={self.root}\n"
            f"lock-path={self.root}\n"
            f"spool-path={self.root}\n"
            "log-level-console=error\n"
            "log-level-file=off\n"
            f"[{STANZA}]\n"
            f"pg1-path={state.data_dir('primary')}\n"
            f"pg1-port={state.port('primary')}\n"
            f"pg1-socket-path={self.socket}\n"
            "pg1-user=postgres\n"
        )
        os.chmod(self.config, 0o644)
        with psycopg.connect(self.bench.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET unix_socket_directories = '{self.socket}'")
            conn.execute("ALTER SYSTEM SET archive_mode = on")
            conn.execute("ALTER SYSTEM SET archive_command = '/bin/true'")
        control.stop_cluster(state, "primary")
        control.start_cluster(state, "primary")
        self._run("stanza-create")

    def _archive(self, on: bool) -> None:
        command = " ".join(self._cmd("archive-push", "%p")) if on else "/bin/true"
        with psycopg.connect(self.bench.dsn("postgres"), autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET archive_command = '{command}'")
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(1)  # the archiver re-reads its configuration asynchronously (SIGHUP)

    def backup(self) -> Run:
        self._archive(True)
        try:
            run, _ = run_process(self._cmd("backup", "--type=full"), user=self.user, env=self._env())
        finally:
            self._archive(False)
        return run

    def stored_bytes(self) -> int | None:
        _, out = run_process(self._cmd("info", "--output=json"), user=self.user, env=self._env(), capture=True)
        backups = json.loads(out)[0].get("backup") or []
        return backups[-1]["info"]["repository"]["delta"] if backups else None

    def restore(self, scratch: Path) -> Run:
        """Restore the newest backup into an empty data directory (removed afterwards)."""
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(mode=0o700, parents=True)
        sbpg.chown(scratch, self.user)
        try:
            run, _ = run_process(self._cmd(f"--pg1-path={scratch}", "restore"), user=self.user, env=self._env())
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return run

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

