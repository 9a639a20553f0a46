"""What a database is beyond its contents: its own properties and the cluster's roles.

``pg_dump`` without ``--create`` leaves out everything that belongs to the database itself
(owner, encoding, locale and ICU collation, comment, CONNECTION LIMIT, GRANTs on it,
``ALTER DATABASE … SET`` and ``ALTER ROLE … IN DATABASE … SET``), and no ``pg_dump`` has the
roles. Every backup therefore also captures, from the same snapshot:

- the database statements exactly as ``pg_dump --create`` writes them (PostgreSQL's own quoting
  of list settings such as ``search_path``, ACLs relative to the default, ICU attributes), kept
  verbatim and only re-pointed at the scratch database's name on restore;
- ``pg_dumpall --globals-only --no-role-passwords`` (what RDS allows: ``pg_authid`` is not
  readable there), from which a restore recreates the roles the target lacks.

Passwords are never in a backup: a recreated LOGIN role has none until it is given one (from
Secrets Manager: ``ALTER ROLE … PASSWORD``, or ``GRANT rds_iam`` for IAM authentication).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from typing import Mapping

from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from scripts.postgres import client as pg
from scripts.postgres import rolemap
from scripts.common import PilotlightError, log

FORMAT = 1
_IDENT = r'(?:"(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)'
# The statements pg_dump --create writes about the database itself (group 2: its name).
_DATABASE_STATEMENT = re.compile(
    rf"^(CREATE DATABASE |ALTER DATABASE |COMMENT ON DATABASE |SECURITY LABEL (?:FOR {_IDENT} )?ON DATABASE "
    rf"|(?:GRANT|REVOKE) [A-Z, ]+ ON DATABASE |ALTER ROLE {_IDENT} IN DATABASE )({_IDENT})([ ;])", re.S)
_OWNER = re.compile(rf"^ALTER DATABASE {_IDENT} OWNER TO ({_IDENT});$")
_ROLE_STATEMENT = re.compile(rf"^(?:CREATE ROLE|ALTER ROLE|COMMENT ON ROLE) ({_IDENT})[ ;]")
_MEMBERSHIP = re.compile(rf"^GRANT ({_IDENT}) TO ({_IDENT})(.*?)(?: GRANTED BY {_IDENT})?;$", re.S)
_PRIVILEGED = re.compile(r"\b(SUPERUSER|REPLICATION|BYPASSRLS)\b")
# Transient operational state, not a property: the fence a switchover puts on the side it leaves.
# The roles a database needs: owners of and grantees on anything in it (pg_shdepend), the
# database's own owner and grantees, per-role settings, and every role those are members of.
_NEEDED_ROLES = """
WITH RECURSIVE me AS (SELECT oid FROM pg_database WHERE datname = current_database()),
direct AS (
    SELECT refobjid AS oid FROM pg_shdepend, me WHERE refclassid = 'pg_authid'::regclass
      AND (dbid = me.oid OR (dbid = 0 AND classid = 'pg_database'::regclass AND objid = me.oid))
    UNION SELECT datdba FROM pg_database, me WHERE pg_database.oid = me.oid
    UNION SELECT setrole FROM pg_db_role_setting, me WHERE setdatabase = me.oid AND setrole <> 0
), closure AS (
    SELECT oid FROM direct UNION SELECT m.roleid FROM pg_auth_members m JOIN closure c ON m.member = c.oid
)
SELECT rolname FROM pg_roles WHERE oid IN (SELECT oid FROM closure) ORDER BY 1
"""
_NOT_PROPERTIES = re.compile(r"^ALTER DATABASE \S+ SET default_transaction_read_only ", re.I)


def statements(script: str) -> list[str]:
    """A pg_dump/pg_dumpall plain script as its SQL statements (comments and psql meta-commands dropped)."""
    out, cur, quote = [], [], None
    for line in script.splitlines(keepends=True):
        if quote is None and not "".join(cur).strip():
            cur = []
            if line.startswith(("--", "\\")) or not line.strip():
                continue
        for ch in line:
            cur.append(ch)
            if quote is not None:
                quote = None if ch == quote else quote  # doubled quotes re-open at once: same result
            elif ch in "'\"":
                quote = ch
            elif ch == ";":
                out.append("".join(cur).strip())
                cur = []
    return out


def unquote(ident: str) -> str:
    return ident[1:-1].replace('""', '"') if ident.startswith('"') else ident


@dataclass(frozen=True)
class Globals:
    """A backup's database statements and roles (the sealed ``globals`` object's JSON)."""

    database: str
    database_statements: tuple[str, ...]
    roles_sql: str
    needed_roles: tuple[str, ...]

    def to_doc(self) -> dict:
        return {"format": FORMAT, "database": self.database, "databaseStatements": list(self.database_statements),
                "roles": self.roles_sql, "neededRoles": list(self.needed_roles)}

    @classmethod
    def from_doc(cls, doc: dict) -> "Globals":
        if doc.get("format") != FORMAT:
            raise PilotlightError(f"globals of format {doc.get('format')!r} are not known to this version")
        return cls(doc["database"], tuple(doc["databaseStatements"]), doc["roles"], tuple(doc["neededRoles"]))

    @property
    def owner(self) -> str | None:
        for stmt in self.database_statements:
            m = _OWNER.match(stmt)
            if m:
                return unquote(m.group(1))
        return None

    def for_database(self, name: str, *, owners: bool = True,
                     role_map: Mapping[str, str] | None = None) -> tuple[str, list[str]]:
        """(CREATE DATABASE, the statements to run once it is restored), re-pointed at ``name``.

        ``owners=False`` (``restore --no-owner``) leaves out the owner, the grants and the
        per-role settings: they name roles of the environment the backup came from;
        ``role_map`` (``restore --role-map``) gives them to the mapped roles instead.
        """
        ident = sql.Identifier(name).as_string(None)
        create, after = None, []
        for stmt in self.database_statements:
            m = _DATABASE_STATEMENT.match(stmt)
            if not m or _NOT_PROPERTIES.match(stmt):
                continue
            rewritten = rolemap.retarget(m.group(1) + ident + stmt[m.end(2):], role_map or {},
                                         lambda role: sql.Identifier(role).as_string(None))
            if m.group(1) == "CREATE DATABASE ":
                create = rewritten
            elif owners or not (_OWNER.match(stmt) or m.group(1).startswith(("GRANT", "REVOKE", "ALTER ROLE"))):
                after.append(rewritten)
        if create is None:
            raise PilotlightError(f"the backup's globals hold no CREATE DATABASE for {self.database}")
        return create, after

    def roles(self) -> dict[str, "Role"]:
        found: dict[str, Role] = {}
        for stmt in statements(self.roles_sql):
            m = _ROLE_STATEMENT.match(stmt)
            if m:
                found.setdefault(unquote(m.group(1)), Role(unquote(m.group(1)))).statements.append(stmt)
                continue
            m = _MEMBERSHIP.match(stmt)
            if m:
                found.setdefault(unquote(m.group(2)), Role(unquote(m.group(2)))).memberships.append(
                    (unquote(m.group(1)), f"GRANT {m.group(1)} TO {m.group(2)}{m.group(3)};"))
        return found


@dataclass
class Role:
    name: str
    statements: list[str] = field(default_factory=list)
    memberships: list[tuple[str, str]] = field(default_factory=list)  # (granted role, GRANT statement)


def capture(dsn: str, snapshot: str) -> Globals:
    """The database's statements (from ``snapshot``) and the cluster's roles, as pg_dump/pg_dumpall write them."""
    conninfo, env = pg.client_args(dsn)
    dbname = conninfo_to_dict(dsn).get("dbname", "")
    database = _run([pg.binary("pg_dump"), "--create", "--schema-only", "--exclude-schema=*", f"--snapshot={snapshot}",
                     "--no-password", f"--dbname={conninfo}"], env, "pg_dump --create")
    roles = _run([pg.binary("pg_dumpall"), "--globals-only", "--no-role-passwords", "--no-tablespaces", "--no-password",
                  f"--dbname={conninfo}"], env, "pg_dumpall --globals-only")
    kept = tuple(s for s in statements(database) if _DATABASE_STATEMENT.match(s))
    with pg.connect(dsn) as conn:
        needed = tuple(r[0] for r in conn.execute(_NEEDED_ROLES).fetchall())
    return Globals(str(dbname), kept, roles, needed)


def _run(cmd: list[str], env: dict, what: str) -> str:
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=env)
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines() or [f"exit {proc.returncode}"]
        raise PilotlightError(f"{what} failed: {tail[-1]}")
    return proc.stdout.decode()


def create_missing_roles(conn, globals_: Globals, skip: frozenset[str] = frozenset()) -> list[str]:
    """Create the roles the backed-up database needs and the target server lacks (without passwords).

    Returns their names. Roles that exist are left exactly as they are; ``skip`` (the roles a
    ``--role-map`` maps) are neither created nor granted. A role's memberships are granted only
    when the member was created here. Without superuser (RDS), SUPERUSER, REPLICATION and BYPASSRLS
    cannot be granted: they are left out with a warning.
    """
    existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles").fetchall()} - set(skip)
    (superuser,) = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    wanted = {n: r for n, r in globals_.roles().items()
              if n in globals_.needed_roles and n not in existing and n not in skip and not n.startswith(("pg_", "rds"))}
    for role in wanted.values():
        for stmt in role.statements:
            if not superuser and _PRIVILEGED.search(stmt):
                log.warning("role %s recreated without %s (needs a superuser)", role.name,
                            ", ".join(sorted(set(_PRIVILEGED.findall(stmt)))))
                stmt = _PRIVILEGED.sub(lambda m: "NO" + m.group(1), stmt)
            conn.execute(stmt)
    for role in wanted.values():
        for granted, stmt in role.memberships:
            if granted in existing or granted in wanted:
                conn.execute(stmt)
    if wanted:
        log.warning("recreated roles %s without passwords: set them from Secrets Manager (ALTER ROLE ... PASSWORD)"
                    " or grant rds_iam for IAM authentication", ", ".join(sorted(wanted)))
    return sorted(wanted)
