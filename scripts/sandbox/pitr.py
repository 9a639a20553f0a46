"""Emulated RDS automated backups on real PostgreSQL: WAL archive, base backups, point-in-time restore.

RDS keeps, per instance, daily snapshots plus the transaction logs archived every few minutes,
and (with automated-backups replication) a copy of both in another region. The sandbox keeps
the same on disk, per region, and restores exactly as PostgreSQL PITR works::

    <pgroot>/pitr/settings.json                       regions, retention, copy delay, intervals
    <pgroot>/pitr/archive.sh                          the clusters' archive_command
    <pgroot>/pitr/<region>/<source>/wal/<segment>.gz  archived WAL (gzip: a switched segment is mostly zeros)
    <pgroot>/pitr/<region>/<source>/base/<id>/        base.tar.gz (pg_basebackup -Ft -X fetch) + backup.json
    <pgroot>/pitr/<region>/<source>/index.json        last COMMIT time per segment (pg_waldump), cached
    <pgroot>/restored/<name>/ and <name>.json         clusters built by :func:`restore`

``<source>`` is the sandbox cluster (``primary`` or ``dr``) that wrote the WAL. The archiver runs
in the data directory, so one script maps the directory's name to the cluster and its region: a
promoted ``dr`` archives into the DR region's store with nothing to reconfigure. The other region's
copy is made by :class:`BackupKeeper` (in the daemon) once a file is ``copy_delay_seconds`` old, and
waits while either region's endpoint is not passing traffic, as AWS's replication would.

The restorable window is real: earliest is the end of the oldest kept base backup, latest the last
commit timestamp found in that region's archived WAL. :func:`restore` builds a new cluster from
the newest base backup ending before the target, ``restore_command`` reading that region's copy,
``recovery_target_time`` and ``recovery_target_action = promote``; when no archived commit is later
than the target it replays the whole archive instead (PostgreSQL would stop with "recovery ended
before configured recovery target was reached", yet every archived commit is within the target).
"""
from __future__ import annotations

import gzip
import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import psycopg

from scripts.sandbox import postgres as pg
from scripts.sandbox.state import SandboxError, SandboxState, free_port, pid_alive, read_json, write_json

log = logging.getLogger("pilotlight.sandbox.pitr")

DEFAULT_COPY_DELAY_SECONDS = 2.0
DEFAULT_ARCHIVE_TIMEOUT_SECONDS = 1
DEFAULT_BASE_BACKUP_INTERVAL_SECONDS = 86400
RESTORE_SECONDS = 120
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_SEGMENT_RE = re.compile(r"^[0-9A-F]{24}$")
_COMMIT_RE = re.compile(r"desc: COMMIT (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) UTC")

ARCHIVE_SCRIPT = """#!/bin/sh
# archive_command of the sandbox clusters: runs in the archiving cluster's data directory.
case "$(basename "$PWD")" in
{cases}
  *) echo "pilotlight: no WAL archive for $PWD" >&2; exit 1 ;;
esac
test -f "$dest/$2.gz" && exit 0
gzip -1 < "$1" > "$dest/.$2.gz.tmp" && mv "$dest/.$2.gz.tmp" "$dest/$2.gz"
"""


class PitrError(SandboxError):
    """A point-in-time restore cannot be done (outside the window, no backup, recovery failed); one line."""


@dataclass(frozen=True)
class Settings:
    regions: dict[str, str]
    retention_days: int
    copy_delay_seconds: float = DEFAULT_COPY_DELAY_SECONDS
    archive_timeout_seconds: int = DEFAULT_ARCHIVE_TIMEOUT_SECONDS
    base_backup_interval_seconds: int = DEFAULT_BASE_BACKUP_INTERVAL_SECONDS
    clusters: dict[str, str] = field(default_factory=dict)  # clusters added later: name -> region


@dataclass(frozen=True)
class Window:
    earliest: datetime
    latest: datetime

    def describe(self) -> str:
        return f"{iso(self.earliest)} .. {iso(self.latest)}"


@dataclass(frozen=True)
class BackupSet:
    """What DescribeDBInstanceAutomatedBackups answers for one source in one region."""

    source_side: str
    source_region: str
    region: str
    window: Window
    retention_days: int


@dataclass(frozen=True)
class Restored:
    name: str
    port: int
    data_dir: str
    restored_to: str
    source_side: str
    region: str


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _root(state: SandboxState) -> Path:
    return state.pgroot / "pitr"


def _store(state: SandboxState, region: str, source_side: str) -> Path:
    return _root(state) / region / source_side


def sources(state: SandboxState, cfg: "Settings | None" = None) -> dict[str, str]:
    """Every cluster whose backups are kept, and the region it runs in."""
    cfg = cfg or settings(state)
    return {**dict(state.regions), **cfg.clusters}


def settings(state: SandboxState) -> Settings:
    doc = read_json(_root(state) / "settings.json")
    if doc is None:
        raise PitrError(f"the sandbox in {state.state_dir} keeps no automated backups; recreate it (`sandbox down`, `up`)")
    return Settings(**doc)


# --- set-up (sandbox up) ---------------------------------------------------------------------


def configure(state: SandboxState, cfg: Settings) -> None:
    """Before the primary first starts: stores, the archive script, and archiving in its config.

    ``track_commit_timestamp`` lets a restored instance say its last commit time (an RDS
    parameter group can set it too); the standby inherits all of it through pg_basebackup.
    """
    root = _root(state)
    dirs = [root] + [_store(state, state.regions[r], side) / sub
                     for r in state.regions for side in state.regions for sub in ("wal", "base")]
    for path in dirs:
        path.mkdir(parents=True, exist_ok=True)
    script = _write_archive_script(state, {**dict(state.regions), **cfg.clusters})
    write_json(root / "settings.json", asdict(cfg))
    for path in [root, *root.rglob("*")]:
        pg.chown(path, state.os_user)
    with open(state.data_dir("primary") / "postgresql.conf", "a") as fh:
        fh.write(f"archive_mode = on\narchive_command = '/bin/sh {script} %p %f'\n"
                 f"archive_timeout = {cfg.archive_timeout_seconds}s\ntrack_commit_timestamp = on\n")


def _write_archive_script(state: SandboxState, clusters: dict[str, str]) -> Path:
    """archive.sh: the archiving cluster's data dir name picks its store (cluster -> region)."""
    cases = "\n".join(f'  {name}) dest="{_store(state, region, name) / "wal"}" ;;' for name, region in clusters.items())
    script = _root(state) / "archive.sh"
    tmp = script.with_name(".archive.sh.tmp")
    tmp.write_text(ARCHIVE_SCRIPT.format(cases=cases))
    tmp.chmod(0o755)
    os.replace(tmp, script)
    return script


def base_backup(state: SandboxState, side: str, now: Callable[[], datetime] | None = None) -> dict:
    """A base backup of a serving cluster into its own region's store (``pg_basebackup -Ft -z -X fetch``)."""
    clock = now or (lambda: datetime.now(timezone.utc))
    region = sources(state)[side]
    start = clock()
    backup_id = start.strftime("%Y%m%dT%H%M%S%fZ")
    final = _store(state, region, side) / "base" / backup_id
    work = final.with_name(f".{backup_id}.tmp")
    with pg.connect(state, side) as conn:  # the segment the backup starts in or after: retention keeps it
        first = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()[0]
    with pg.one_base_backup_at_a_time(state, side):
        pg.run(state, ["pg_basebackup", "-h", "127.0.0.1", "-p", str(state.port(side)), "-U", pg.SUPERUSER,
                       "-D", str(work), "-Ft", "-z", "-X", "fetch", "-c", "fast", "--no-sync", "--no-manifest"],
               env={"PGPASSFILE": str(state.internal_passfile)}, timeout=300)
    meta = {"id": backup_id, "start": iso(start), "end": iso(clock()), "source": side, "firstSegment": first}
    write_json(work / "backup.json", meta)
    pg.chown(work / "backup.json", state.os_user)
    os.rename(work, final)
    return meta


# --- the restorable window -------------------------------------------------------------------


def _base_backups(store: Path) -> list[dict]:
    metas = [read_json(d / "backup.json") for d in sorted((store / "base").glob("[0-9]*"))]
    return sorted((m for m in metas if m), key=lambda m: m["end"])


def _segments(store: Path) -> list[Path]:
    return sorted(p for p in (store / "wal").glob("*.gz") if _SEGMENT_RE.match(p.name[:-3]))


def _last_commit(state: SandboxState, segment: Path) -> str | None:
    """The last COMMIT timestamp in one archived segment, read with pg_waldump."""
    with tempfile.TemporaryDirectory(prefix="pilotlight-wal-") as tmp:
        plain = Path(tmp) / segment.name[:-3]
        with gzip.open(segment, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        proc = pg.run(None, ["pg_waldump", "-r", "Transaction", str(plain)], check=False, timeout=60)
    stamps = _COMMIT_RE.findall(proc.stdout)
    if not stamps:
        return None
    return iso(datetime.fromisoformat(stamps[-1]).replace(tzinfo=timezone.utc))


def _latest_commit(state: SandboxState, store: Path) -> datetime | None:
    index_path = store / "index.json"
    index = read_json(index_path) or {}
    found, changed = None, False
    for segment in reversed(_segments(store)):
        if segment.name not in index:
            index[segment.name] = _last_commit(state, segment)
            changed = True
        if index[segment.name]:
            found = datetime.fromisoformat(index[segment.name].replace("Z", "+00:00"))
            break
    if changed:
        write_json(index_path, index)
    return found


def window(state: SandboxState, region: str, source_side: str) -> Window | None:
    """The real restorable window of ``source_side``'s backups held in ``region``; None if none are held."""
    store = _store(state, region, source_side)
    backups = _base_backups(store)
    if not backups:
        return None
    earliest = datetime.fromisoformat(backups[0]["end"].replace("Z", "+00:00"))
    latest = _latest_commit(state, store)
    return Window(earliest, max(earliest, latest) if latest else earliest)


def automated_backups(state: SandboxState, region: str) -> list[BackupSet]:
    """Every source whose automated backups ``region`` holds (its own, and replicated copies)."""
    cfg = settings(state)
    out = []
    for side, home in sources(state, cfg).items():
        found = window(state, region, side)
        if found:
            out.append(BackupSet(side, home, region, found, cfg.retention_days))
    return out


# --- restore ---------------------------------------------------------------------------------


def _restored_dir(state: SandboxState) -> Path:
    return state.pgroot / "restored"


def restored(state: SandboxState) -> list[Restored]:
    """Clusters built by :func:`restore` (what DescribeDBInstances lists besides the two instances)."""
    return [Restored(**read_json(p)) for p in sorted(_restored_dir(state).glob("*.json"))]


def restore(state: SandboxState, region: str, source_side: str, name: str,
            target_time: datetime | None) -> Restored:
    """A NEW cluster ``name`` (under ``<pgroot>/restored``) recovered to ``target_time`` (None: latest)."""
    if not _NAME_RE.match(name):
        raise PitrError(f"restored instance name {name!r}: use lowercase letters, digits and hyphens")
    if (_restored_dir(state) / f"{name}.json").exists():
        raise PitrError(f"a restored instance named {name} already exists")
    _restored_dir(state).mkdir(exist_ok=True)
    pg.chown(_restored_dir(state), state.os_user)
    port = free_port()
    restored_to = recover(state, region, source_side, _restored_dir(state) / name, port, target_time)
    result = Restored(name, port, str(_restored_dir(state) / name), iso(restored_to), source_side, region)
    write_json(_restored_dir(state) / f"{name}.json", asdict(result))
    return result


def check_target(state: SandboxState, region: str, source_side: str, target_time: datetime | None) -> datetime:
    """The time a restore would reach (None: the latest restorable); PitrError naming the window if outside it."""
    if target_time is not None and target_time.tzinfo is None:
        raise PitrError("restore time needs a time zone")
    found = window(state, region, source_side)
    if found is None:
        raise PitrError(f"{region} holds no automated backups of {source_side}")
    target = found.latest if target_time is None else target_time
    if not found.earliest <= target <= found.latest:
        raise PitrError(f"restore time {iso(target)} is outside the restorable window of {source_side} "
                        f"in {region} ({found.describe()})")
    return target


def recover(state: SandboxState, region: str, source_side: str, data_dir: Path, port: int,
            target_time: datetime | None) -> datetime:
    """Build a cluster in ``data_dir`` listening on ``port``, recovered to ``target_time`` from ``region``'s
    copy of ``source_side``'s backups, promoted and accepting connections; returns the time restored to.
    On failure nothing is left in ``data_dir``."""
    target = check_target(state, region, source_side, target_time)
    found = window(state, region, source_side)
    store = _store(state, region, source_side)
    backup = [b for b in _base_backups(store) if b["end"] <= iso(target)][-1]
    log_file = data_dir.with_name(f"{data_dir.name}.log")
    try:
        _unpack(state, store / "base" / backup["id"] / "base.tar.gz", data_dir)
        _recovery_settings(state, data_dir, store, port, None if target >= found.latest else target)
        (data_dir / "recovery.signal").touch()
        pg.chown(data_dir / "recovery.signal", state.os_user)
        proc = pg.run(state, ["pg_ctl", "-D", str(data_dir), "-l", str(log_file), "-w", "-t", str(RESTORE_SECONDS),
                              "start"], timeout=RESTORE_SECONDS + 10, check=False)
        if proc.returncode != 0:
            raise PitrError(f"recovery of {data_dir.name} failed: {_last_log_line(log_file)}")
        _wait_promoted(state, port, data_dir.name, log_file)
    except BaseException:
        _stop(state, data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return target


def add_cluster(state: SandboxState, cluster: str, region: str) -> None:
    """Let a cluster made later (e.g. by the emulated RDS) archive, into ``region``'s store, once it serves."""
    cfg = settings(state)
    clusters = {**cfg.clusters, cluster: region}
    write_json(_root(state) / "settings.json", asdict(Settings(**{**asdict(cfg), "clusters": clusters})))
    _write_archive_script(state, clusters)
    for sub in ("wal", "base"):
        path = _store(state, region, cluster) / sub
        path.mkdir(parents=True, exist_ok=True)
        for p in (path.parent, path):
            pg.chown(p, state.os_user)


def _unpack(state: SandboxState, tarball: Path, data_dir: Path) -> None:
    data_dir.mkdir(mode=0o700)
    pg.chown(data_dir, state.os_user)
    kwargs = {}
    if state.os_user:
        import pwd  # noqa: PLC0415 - only when running as root

        entry = pwd.getpwnam(state.os_user)
        kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    proc = subprocess.run(["tar", "-xzf", str(tarball), "-C", str(data_dir)], capture_output=True, text=True,
                          check=False, **kwargs)
    if proc.returncode != 0:
        raise PitrError(f"cannot unpack base backup {tarball.parent.name}: {proc.stderr.strip()[-200:]}")


def _recovery_settings(state: SandboxState, data_dir: Path, store: Path, port: int, target: datetime | None) -> None:
    """Appended to postgresql.auto.conf, read last, so they win over what the source's config says."""
    wal = store / "wal"
    lines = [
        "# --- pilotlight sandbox: point-in-time restore ---",
        f"port = {port}",
        "archive_mode = off",
        "primary_conninfo = ''",
        "primary_slot_name = ''",
        f"restore_command = 'test -f {wal}/%f.gz && gzip -dc {wal}/%f.gz > %p'",
        "recovery_target_action = 'promote'",
    ]
    if target is not None:
        # a numeric offset: a zone abbreviation such as "Z" cannot be looked up while the config is read
        stamp = target.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00")
        lines += [f"recovery_target_time = '{stamp}'", "recovery_target_inclusive = on"]
    (data_dir / "standby.signal").unlink(missing_ok=True)
    with open(data_dir / "postgresql.auto.conf", "a") as fh:
        fh.write("\n".join(lines) + "\n")


def _wait_promoted(state: SandboxState, port: int, name: str, log_file: Path) -> None:
    deadline = time.monotonic() + RESTORE_SECONDS
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, dbname="postgres", user=pg.SUPERUSER,
                                 passfile=str(state.state_dir / "pgpass"), connect_timeout=2) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    return
        except psycopg.OperationalError:
            pass
        time.sleep(0.1)
    raise PitrError(f"{name} did not finish recovery within {RESTORE_SECONDS}s: {_last_log_line(log_file)}")


def _last_log_line(log_file: Path) -> str:
    """The server's reason, on one line: its last FATAL and the line before it (which says why)."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return "no server log"
    fatal = [i for i, line in enumerate(lines) if "FATAL" in line or "PANIC" in line]
    if not fatal:
        return f"see {log_file}"
    picked = lines[max(0, fatal[-1] - 1):fatal[-1] + 1]
    return "; ".join(" ".join(line.split("] ", 1)[-1].split()) for line in picked)


def _stop(state: SandboxState, data_dir: Path) -> None:
    pidfile = data_dir / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    if pid_alive(pid, "postgres"):
        pg.run(state, ["pg_ctl", "-D", str(data_dir), "-m", "immediate", "-w", "-t", "30", "stop"],
               timeout=40, check=False)


def remove_restored(state: SandboxState, name: str) -> None:
    """Stop and delete a restored cluster (DeleteDBInstance)."""
    meta = _restored_dir(state) / f"{name}.json"
    if not meta.exists():
        raise PitrError(f"no restored instance named {name}")
    data_dir = _restored_dir(state) / name
    _stop(state, data_dir)
    shutil.rmtree(data_dir, ignore_errors=True)
    (_restored_dir(state) / f"{name}.log").unlink(missing_ok=True)
    meta.unlink()


def stop_all_restored(state: SandboxState) -> None:
    """Called by `sandbox down`: no restored cluster outlives the sandbox."""
    for item in restored(state):
        _stop(state, Path(item.data_dir))


# --- the daemon's part: DR copy, periodic base backups, retention ----------------------------


class BackupKeeper:
    """Copies each region's archive to the other after the delay; takes base backups; applies retention."""

    def __init__(self, state_loader: Callable[[], SandboxState | None], paused: Callable[[], bool],
                 interval: float = 0.5):
        self.state_loader = state_loader
        self.paused = paused
        self.interval = interval
        self.copied = 0
        self.base_backups = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="pitr-keeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def snapshot(self) -> dict:
        return {"copied": self.copied, "baseBackups": self.base_backups, "errors": self.errors,
                "paused": self.paused()}

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            state = self.state_loader()
            if state is None or state.contract is None:  # `up` is still building (it takes the first base backup)
                continue
            try:
                self.tick(state, datetime.now(timezone.utc))
            except Exception as exc:  # noqa: BLE001 - keep the keeper alive, count and log
                self.errors += 1
                log.warning("pitr keeper: %s", exc)

    def tick(self, state: SandboxState, now: datetime) -> None:
        cfg = settings(state)
        if not self.paused():
            self.copied += copy_to_other_region(state, cfg, now)
        for side in sources(state, cfg):
            if self._due(state, cfg, side, now):
                base_backup(state, side)
                self.base_backups += 1
        prune(state, cfg, now)

    @staticmethod
    def _due(state: SandboxState, cfg: Settings, side: str, now: datetime) -> bool:
        if side not in state.clusters or pg.postmaster_pid(state, side) is None or pg.is_in_recovery(state, side):
            return False
        backups = _base_backups(_store(state, sources(state, cfg)[side], side))
        if not backups:
            return True
        newest = datetime.fromisoformat(backups[-1]["start"].replace("Z", "+00:00"))
        return (now - newest).total_seconds() >= cfg.base_backup_interval_seconds


def copy_to_other_region(state: SandboxState, cfg: Settings, now: datetime) -> int:
    """Replicate automated backups: files older than the copy delay, to the other region's store."""
    copied = 0
    cutoff = now.timestamp() - cfg.copy_delay_seconds
    for side, home in sources(state, cfg).items():
        source = _store(state, home, side)
        other = next(r for r in state.regions.values() if r != home)
        target = _store(state, other, side)
        for path in sorted([*(source / "wal").glob("*.gz"), *(source / "base").glob("[0-9]*/*")]):
            dest = target / path.relative_to(source)
            if dest.exists() or path.stat().st_mtime > cutoff:
                continue
            if not dest.parent.exists():
                dest.parent.mkdir(parents=True)
                pg.chown(dest.parent, state.os_user)
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copy2(path, tmp)
            pg.chown(tmp, state.os_user)  # restore_command runs as the clusters' OS user
            os.replace(tmp, dest)
            copied += 1
    return copied


def prune(state: SandboxState, cfg: Settings, now: datetime) -> None:
    """Retention: drop base backups older than the retention period (always keeping the newest) and
    the WAL older than the oldest base backup kept."""
    horizon = iso(now - timedelta(days=cfg.retention_days))
    for region in state.regions.values():
        for side in sources(state, cfg):
            store = _store(state, region, side)
            backups = _base_backups(store)
            for old in [b for b in backups[:-1] if b["end"] < horizon]:
                shutil.rmtree(store / "base" / old["id"], ignore_errors=True)
            kept = _base_backups(store)
            if not kept:
                continue
            first = _first_segment(store / "base" / kept[0]["id"])
            for path in (store / "wal").glob("*.gz"):  # segments and their .backup files; .history stays
                if first and _SEGMENT_RE.match(path.name[:24]) and path.name[8:24] < first[8:]:
                    path.unlink(missing_ok=True)


def _first_segment(backup_dir: Path) -> str | None:
    meta = read_json(backup_dir / "backup.json") or {}
    return meta.get("firstSegment")
