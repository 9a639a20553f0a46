"""Every backup and restore method measured, each one call returning a :class:`bench.measure.Run`.

Pilotlight runs as the user runs it (``python -m scripts backup|restore`` in a subprocess, so its
wall time includes interpreter start-up and its peak RSS is its own); the limits run the bare
PostgreSQL tools or boto3's transfer manager on the very same bytes; the runbooks' recipe is the
reference runbook's script (``pg_dump -Fc -b -f``, ``gzip``, upload) with boto3 in place of the
AWS CLI.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from boto3.s3.transfer import TransferConfig

from bench.measure import Failed, Run, run_process, timed
from bench.sandbox import Bench
from scripts import aws
from scripts.postgres import client as pg
from scripts.vault.backup import TRANSFER, sse_args
from scripts.vault.stream import DOWNLOAD

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# A second source tree of Pilotlight (a proposed patch), measured side by side with the committed one.
VARIANT_ROOT = Path(os.environ["BENCH_VARIANT_ROOT"]).resolve() if os.environ.get("BENCH_VARIANT_ROOT") else None
REPLICATION_WAIT = 600


@dataclass
class Scene:
    """One database under test and what the runs leave for the next ones (the newest backup)."""

    bench: Bench
    dbname: str
    work: Path
    backup_id: str | None = None
    stored_key: str | None = None
    stored_bytes: int | None = None
    dump_bytes: int | None = None
    sizes: dict = field(default_factory=dict)
    counter: int = 0
    replicating: bool = False

    @property
    def s3(self):
        return aws.client(self.bench.contract, "s3", "primary")

    @property
    def bucket(self) -> str:
        return self.bench.contract.buckets["primary"].bucket

    def next_name(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}_{self.counter}"

    def wait_replicated(self, key: str) -> None:
        """With the sandbox's replication on, let it copy ``key`` to the DR bucket before the next
        measurement, so its CPU is not charged to that one (see :func:`stop_replication`)."""
        if not self.replicating:
            return
        dr = aws.client(self.bench.contract, "s3", "dr")
        bucket = self.bench.contract.buckets["dr"].bucket
        deadline = time.monotonic() + REPLICATION_WAIT
        while time.monotonic() < deadline:
            try:
                dr.head_object(Bucket=bucket, Key=key)
                return
            except Exception:  # noqa: BLE001 - not there yet
                time.sleep(0.5)
        raise Failed(f"replication of {key} did not finish within {REPLICATION_WAIT}s")


def stop_replication(bench: Bench) -> None:
    """Remove the primary vault's replication rule for the benchmark.

    On AWS replication is server-side and costs the client nothing; the sandbox emulates it with a
    poller that lists every object version twice a second, and moto 5.2.5's ListObjectVersions
    deep-copies every version's body (to a temp file above 5 MiB) — with backups of tens of MiB
    that is GBs per minute of disk and CPU charged to whatever is being measured (a scale-50 run
    filled the disk twice). Restores here read the primary bucket, so nothing needs the DR copy.
    """
    s3 = aws.client(bench.contract, "s3", "primary")
    s3.delete_bucket_replication(Bucket=bench.contract.buckets["primary"].bucket)


def _tool(scene: Scene, *args: str, root: Path = PROJECT_ROOT) -> tuple[Run, dict]:
    cmd = [sys.executable, "-m", "scripts", *args, "--outputs", str(scene.bench.outputs), "--json", "-q"]
    run, out = run_process(cmd, env={**os.environ, "PYTHONPATH": str(root)}, capture=True, cwd=root)
    return run, json.loads(out)


# --- backup -------------------------------------------------------------------------------------

def pilotlight_backup(scene: Scene, root: Path = PROJECT_ROOT) -> Run:
    run, doc = _tool(scene, "backup", "--tier", "daily", "--source", scene.bench.dsn(scene.dbname), root=root)
    scene.backup_id = doc["id"]
    scene.stored_key = doc["object"]["key"]
    scene.stored_bytes = doc["object"]["storedBytes"]
    scene.dump_bytes = doc["dump"]["bytes"]
    scene.sizes["pilotlight"] = scene.stored_bytes
    scene.wait_replicated(scene.stored_key)
    return run


def pg_dump_null(scene: Scene) -> Run:
    """The backup's first limit: the dump itself, uncompressed, thrown away."""
    run, _ = run_process([pg.binary("pg_dump"), "-Fc", "-Z0", "--no-password", scene.dbname], env=scene.bench.pg_env())
    return run


def stored_copy(scene: Scene) -> Path:
    """The newest Pilotlight backup's stored bytes as a local file (fetched once, not timed)."""
    path = scene.work / f"{scene.backup_id}.stored"
    if not path.exists():
        scene.s3.download_file(scene.bucket, scene.stored_key, str(path), Config=DOWNLOAD)
    return path


def upload_stored(scene: Scene) -> Run:
    """The backup's second limit: the same stored bytes, same bucket, same transfer settings."""
    path = stored_copy(scene)
    key = f"bench/{scene.next_name('upload')}"
    extra = sse_args(scene.bench.contract, "primary")
    run = timed(lambda: scene.s3.upload_file(str(path), scene.bucket, key, ExtraArgs=extra, Config=TRANSFER))
    scene.wait_replicated(key)
    return run


def runbook_recipe(scene: Scene) -> Run:
    """The reference runbooks' backup: pg_dump -Fc -b -f FILE; gzip FILE; upload FILE.gz."""
    dump = scene.work / "runbook.dump"
    gz = scene.work / "runbook.dump.gz"
    key = f"bench/{scene.next_name('runbook')}.dump.gz"
    env = scene.bench.pg_env()
    extra = sse_args(scene.bench.contract, "primary")

    def recipe() -> dict:
        subprocess.run([pg.binary("pg_dump"), "-Fc", "-b", "--no-password", "-f", str(dump), scene.dbname], env=env,
                       check=True, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["gzip", "-f", str(dump)], check=True)
        scene.s3.upload_file(str(gz), scene.bucket, key, ExtraArgs=extra, Config=TransferConfig())
        return {"stored_bytes": gz.stat().st_size}

    try:
        run = timed(recipe)
    finally:
        dump.unlink(missing_ok=True)
        gz.unlink(missing_ok=True)
    scene.sizes["runbook"] = run.extra["stored_bytes"]
    scene.wait_replicated(key)
    return run


# --- restore ------------------------------------------------------------------------------------

def pilotlight_restore(scene: Scene, jobs: int = 1, root: Path = PROJECT_ROOT) -> Run:
    """``restore`` as documented (one job) or with ``--jobs N`` (data streamed, post-data by pg_restore -j N);
    the run keeps the restore's own phase timings (``extra["phases"]``)."""
    target = scene.next_name(f"{scene.dbname}_r")
    dsn = scene.bench.dsn(target)
    try:
        run, doc = _tool(scene, "restore", "--target", dsn, "--backup", scene.backup_id, "--allow-rename", "--yes",
                         f"--jobs={jobs}", root=root)
    finally:
        _drop(scene, target)
    run.extra["phases"] = {p["name"]: p["seconds"] for p in doc.get("phases", [])}
    return run


def plain_dump(scene: Scene) -> Path:
    """A local plaintext custom-format dump (made once, not timed) for the pg_restore limit."""
    path = scene.work / f"{scene.dbname}.dump"
    if not path.exists():
        subprocess.run([pg.binary("pg_dump"), "-Fc", "-Z0", "--no-password", "-f", str(path), scene.dbname],
                       env=scene.bench.pg_env(), check=True, stdin=subprocess.DEVNULL)
    return path


def pg_restore_local(scene: Scene, jobs: int = 2) -> Run:
    """The restore's first limit: pg_restore -j2 from a local file into a new database (-j1 for the model)."""
    path = plain_dump(scene)
    target = scene.next_name(f"{scene.dbname}_p")
    env = scene.bench.pg_env()
    try:
        subprocess.run([pg.binary("createdb"), "--no-password", "-T", "template0", target], env=env, check=True)
        run, _ = run_process([pg.binary("pg_restore"), f"-j{jobs}", "--exit-on-error", "--no-password", "-d", target,
                              str(path)], env=env)
    finally:
        _drop(scene, target)
    return run


def post_data_profile(scene: Scene) -> dict:
    """Where a restore's time goes, for the parallel-restore model (bench.report.parallel_model).

    From the local plaintext dump into a new database: the pre-data and data sections through one
    pg_restore (what Pilotlight streams), then the post-data section with one job and
    ``--verbose``, each entry timed from its "creating ..." line to the next one's.
    """
    path = plain_dump(scene)
    target = scene.next_name(f"{scene.dbname}_m")
    env = scene.bench.pg_env()
    base = [pg.binary("pg_restore"), "--exit-on-error", "--no-password", "-d", target]
    try:
        subprocess.run([pg.binary("createdb"), "--no-password", "-T", "template0", target], env=env, check=True)
        t0 = time.perf_counter()
        subprocess.run([*base, "--section=pre-data", "--section=data", str(path)], env=env, check=True,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        load_s = time.perf_counter() - t0
        entries: list[list] = []
        t0 = last = time.perf_counter()
        proc = subprocess.Popen([*base, "--section=post-data", "--verbose", str(path)], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in proc.stderr:
            if line.startswith("pg_restore: creating "):
                now = time.perf_counter()
                if entries:
                    entries[-1][1] = round(now - last, 3)
                entries.append([line.split("creating ", 1)[1].strip(), 0.0])
                last = now
        if proc.wait() != 0:
            raise Failed("pg_restore --section=post-data failed")
        if entries:
            entries[-1][1] = round(time.perf_counter() - last, 3)
        post_s = time.perf_counter() - t0
    finally:
        _drop(scene, target)
    entries.sort(key=lambda e: -e[1])
    return {"load_s": round(load_s, 3), "post_data_j1_s": round(post_s, 3), "entries": len(entries),
            "entry_s": [e[1] for e in entries], "largest": entries[:5]}


def download_stored(scene: Scene) -> Run:
    """The restore's second limit: the stored bytes downloaded with the restore's transfer settings."""
    def get() -> None:
        with open(os.devnull, "wb") as sink:
            scene.s3.download_fileobj(scene.bucket, scene.stored_key, sink, Config=DOWNLOAD)

    return timed(get)


def _drop(scene: Scene, name: str) -> None:
    from bench.dataset import drop  # noqa: PLC0415 - keeps this module's imports about methods

    drop(scene.bench.dsn("postgres"), name)


BACKUP = {"pilotlight": pilotlight_backup, "pg_dump_z0_null": pg_dump_null, "upload_stored": upload_stored,
          "runbook_recipe": runbook_recipe}
RESTORE = {"pilotlight": pilotlight_restore, "pilotlight_jobs2": lambda scene: pilotlight_restore(scene, jobs=2),
           "pg_restore_j2_local": pg_restore_local, "pg_restore_j1_local": lambda scene: pg_restore_local(scene, jobs=1),
           "download_stored": download_stored}
PEERS = {"runbook_recipe"}  # left out at the scales measured once (they show growth and memory, not peers)
if VARIANT_ROOT is not None:
    BACKUP["pilotlight_variant"] = lambda scene: pilotlight_backup(scene, root=VARIANT_ROOT)
    RESTORE["pilotlight_variant"] = lambda scene: pilotlight_restore(scene, root=VARIANT_ROOT)
    RESTORE["pilotlight_variant_jobs2"] = lambda scene: pilotlight_restore(scene, jobs=2, root=VARIANT_ROOT)
