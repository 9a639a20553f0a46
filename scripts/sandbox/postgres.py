"""Real PostgreSQL 15 clusters for the sandbox: a primary and a streaming standby (``pg_basebackup -R``).

PostgreSQL refuses to run as root, so when we are root every server-side program (initdb,
pg_ctl, pg_basebackup) runs as the ``postgres`` OS user (``Popen(user=...)``), in a root dir
that user owns. Servers listen on 127.0.0.1 only (no Unix socket: nothing to collide with the
machine's own clusters). Tuned for fast start and recovery, not throughput.
"""
from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psycopg
from psycopg import sql

from scripts.sandbox.state import SandboxError, SandboxState, pid_alive
from scripts.sandbox.tls import ServerTls

PG_BIN = Path(os.environ.get("PILOTLIGHT_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"

# Appended to postgresql.conf; the standby inherits it through pg_basebackup and only its port changes.
SERVER_SETTINGS = """
# --- pilotlight sandbox ---
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = ''
wal_level = replica
max_wal_senders = 8
max_replication_slots = 8
hot_standby = on
shared_buffers = 16MB
max_connections = 40
wal_receiver_status_interval = 1s
wal_retrieve_retry_interval = 500ms
checkpoint_timeout = 5min
password_encryption = 'scram-sha-256'
log_line_prefix = '%m [%p] '
ssl = on
ssl_cert_file = '{cert_file}'
ssl_key_file = '{key_file}'
"""


def os_user() -> str | None:
    """The OS user the clusters run as: ``postgres`` when we are root, else ourselves (None)."""
    if not (PG_BIN / "initdb").exists():
        raise SandboxError(f"PostgreSQL 15 not found in {PG_BIN}; install it (apt-get install postgresql-15) "
                           "or set PILOTLIGHT_PG_BIN")
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SUPERUSER)
    except KeyError:
        raise SandboxError("running as root needs a 'postgres' OS user (PostgreSQL refuses to run as root); "
                           "install postgresql-15 or run as an ordinary user") from None
    return SUPERUSER


def run(state_or_user: SandboxState | str | None, args: list[str], env: dict[str, str] | None = None,
        timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    """Run a PostgreSQL program (as the cluster OS user when root); one-line SandboxError on failure."""
    user = state_or_user.os_user if isinstance(state_or_user, SandboxState) else state_or_user
    full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "TZ": "UTC"}
    kwargs = {}
    if user:
        entry = pwd.getpwnam(user)
        kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        full_env["HOME"] = entry.pw_dir
    full_env.update(env or {})
    prog = str(PG_BIN / args[0])
    try:
        proc = subprocess.run([prog, *args[1:]], env=full_env, capture_output=True, text=True,
                              timeout=timeout, check=False, stdin=subprocess.DEVNULL, **kwargs)
    except subprocess.TimeoutExpired:
        raise SandboxError(f"{args[0]} did not finish within {timeout:.0f}s") from None
    if check and proc.returncode != 0:
        raise SandboxError(f"{args[0]} failed: {failure_line(proc.stderr or proc.stdout)}")
    return proc


def failure_line(output: str) -> str:
    """The line that says why a PostgreSQL program failed: its first ``error:`` or ``FATAL:`` line, since
    the last one is often only the clean-up (pg_basebackup ends with "removing data directory")."""
    lines = output.strip().splitlines() or ["no output"]
    return next((line for line in lines if "error:" in line or "FATAL:" in line), lines[-1])


def chown(path: Path, user: str | None) -> None:
    ids = owner_ids(user)
    if ids:
        os.chown(path, *ids)


def owner_ids(user: str | None) -> tuple[int, int] | None:
    """(uid, gid) of the clusters' OS user, None when that is ourselves."""
    if not user:
        return None
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def write_passfile(path: Path, passwords: dict[str, str], owner: str | None) -> None:
    """A libpq passfile (0600): any host (the service name resolves to the clusters too), port, database."""
    lines = [f"*:*:*:{user}:{_escape(pw)}" for user, pw in passwords.items()]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    chown(path, owner)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def init_primary(state: SandboxState, superuser_password: str, tls: ServerTls) -> None:
    """initdb (scram for TCP, no fsync during init: a scratch cluster), then our settings (TLS with ``tls``)."""
    init_instance(state, "primary", SUPERUSER, superuser_password, tls)


def init_instance(state: SandboxState, cluster: str, master_user: str, password: str, tls: ServerTls) -> None:
    """An empty cluster (the primary at `up`, a CreateDBInstance later): initdb with the master user, our settings."""
    data_dir = state.data_dir(cluster)
    pwfile = state.pgroot / f".initpw-{cluster}"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(password + "\n")
    chown(pwfile, state.os_user)
    try:
        run(state, ["initdb", "-D", str(data_dir), "-U", master_user, f"--pwfile={pwfile}", "--no-sync",
                    "--auth-host=scram-sha-256", "--auth-local=peer", "-E", "UTF8", "--locale=C.UTF-8"])
    finally:
        pwfile.unlink(missing_ok=True)
    with open(data_dir / "postgresql.conf", "a") as fh:
        fh.write(SERVER_SETTINGS.format(port=state.port(cluster), cert_file=tls.cert_file, key_file=tls.key_file))


def set_port(data_dir: Path, port: int) -> None:
    """Rewrite the port a copied data dir listens on (both clusters share 127.0.0.1)."""
    conf = data_dir / "postgresql.conf"
    conf.write_text(re.sub(r"(?m)^port = \d+$", f"port = {port}", conf.read_text()))


def start(state: SandboxState, side: str) -> None:
    """pg_ctl start and wait until it accepts connections (a standby: until consistent)."""
    data_dir = state.data_dir(side)
    _clear_stale_pid(data_dir)
    run(state, ["pg_ctl", "-D", str(data_dir), "-l", str(state.log_file(side)), "-w", "-t", "60", "start"],
        timeout=70)


def stop(state: SandboxState, side: str, mode: str = "fast") -> None:
    """pg_ctl stop (``immediate`` is an abrupt stop without a checkpoint); no-op if not running."""
    if postmaster_pid(state, side) is None:
        return
    run(state, ["pg_ctl", "-D", str(state.data_dir(side)), "-m", mode, "-w", "-t", "30", "stop"],
        timeout=40, check=False)
    if postmaster_pid(state, side) is not None:
        kill(state, side)


def kill(state: SandboxState, side: str) -> None:
    """SIGKILL the postmaster and all its backends at once (pg_ctl starts it as a session leader)."""
    pid = postmaster_pid(state, side)
    if pid is None:
        return
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _group_alive(pid):
        time.sleep(0.02)


def _group_alive(pgid: int) -> bool:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if os.getpgid(int(proc.name)) == pgid and pid_alive(int(proc.name)):
                    return True
            except (ProcessLookupError, PermissionError):
                continue
    return False


def postmaster_pid(state: SandboxState, side: str) -> int | None:
    """The running postmaster's pid from postmaster.pid, or None if the cluster is down."""
    try:
        pid = int((state.data_dir(side) / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid, "postgres") else None


def _clear_stale_pid(data_dir: Path) -> None:
    """After SIGKILL postmaster.pid stays behind; PostgreSQL copes, but make `start` deterministic."""
    pidfile = data_dir / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    if not pid_alive(pid, "postgres"):
        pidfile.unlink(missing_ok=True)


@contextmanager
def one_base_backup_at_a_time(state: SandboxState, cluster: str) -> Iterator[None]:
    """Hold ``cluster``'s base-backup turn, across processes (the daemon's automated backups, a re-seed).

    On PostgreSQL 15 another base backup's checkpoint, landing while ``pg_basebackup -C`` creates its
    slot, can invalidate that new slot ("terminating process N to release replication slot") and the
    re-seed fails; one base backup of a cluster at a time avoids the race.
    """
    with open(state.pgroot / f".basebackup-{cluster}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def basebackup(state: SandboxState, side: str, source_side: str) -> None:
    """Make ``side`` a streaming replica of ``source_side``: fresh pg_basebackup -R with its own slot."""
    data_dir = state.data_dir(side)
    slot = "pilotlight_" + re.sub(r"[^a-z0-9_]", "_", side.lower())
    with one_base_backup_at_a_time(state, source_side):
        with connect(state, source_side) as conn:
            conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                         "WHERE slot_name = %s AND NOT active", (slot,))
        if data_dir.exists():
            shutil.rmtree(data_dir)
        run(state, ["pg_basebackup", "-h", "127.0.0.1", "-p", str(state.port(source_side)), "-U", SUPERUSER,
                    "-D", str(data_dir), "-R", "-X", "stream", "-c", "fast", "-S", slot, "-C", "--no-sync"],
            env={"PGPASSFILE": str(state.internal_passfile), "PGAPPNAME": f"pilotlight-{side}"}, timeout=300)
    set_port(data_dir, state.port(side))


def connect(state: SandboxState, side: str, dbname: str = "postgres", user: str = SUPERUSER,
            passfile: Path | None = None, autocommit: bool = True) -> psycopg.Connection:
    """A psycopg connection to a sandbox cluster (passwords from the passfile, never from here)."""
    return psycopg.connect(host="127.0.0.1", port=state.port(side), dbname=dbname, user=user,
                           passfile=str(passfile or state.state_dir / "pgpass"), connect_timeout=5,
                           autocommit=autocommit)


def is_in_recovery(state: SandboxState, side: str) -> bool:
    try:
        with connect(state, side) as conn:
            return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or ["no answer"])[-1]
        raise SandboxError(f"{side} cluster (127.0.0.1:{state.port(side)}) does not answer: {first}") from None


def create_app(state: SandboxState, db_names: list[str], app_user: str, app_password: str, seed_rows: int) -> None:
    """The application's databases, owned by one login role; an extension from contrib; a small demo schema."""
    with connect(state, "primary") as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(app_user), sql.Literal(app_password)))
        for name in db_names:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(app_user)))
    for name in db_names:
        with connect(state, "primary", dbname=name) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        with connect(state, "primary", dbname=name, user=app_user, autocommit=False) as conn:
            conn.execute(DEMO_SCHEMA)
            for statement in DEMO_ROWS:
                conn.execute(statement, {"n": seed_rows})


DEMO_SCHEMA = """
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers(id),
    amount numeric(12, 2) NOT NULL,
    token text NOT NULL DEFAULT encode(gen_random_bytes(8), 'hex'),
    created_at timestamptz NOT NULL DEFAULT now()
);
"""

DEMO_ROWS = (
    """INSERT INTO customers (name, email)
       SELECT 'customer ' || g, 'customer' || g || '@example.com' FROM generate_series(1, %(n)s) g""",
    """INSERT INTO orders (customer_id, amount)
       SELECT c.id, round(mod(c.id * 7, 1000)::numeric + 0.99, 2) FROM customers c""",
)
