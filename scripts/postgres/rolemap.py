"""``restore --role-map old=new``: a backup's ownership and grants given to another environment's roles.

pg_restore cannot rename roles, so the restore runs as if the source environment's roles were
there: each mapped source role is created for the restore only (``NOLOGIN``, no password, no
memberships), pg_restore gives it its objects and grants in the scratch database, and before the
swap :func:`hand_over` moves everything to the mapped role and drops the stand-in:

- every privilege granted to the stand-in on an object of the database (tables, sequences and
  their columns, schemas, routines, types, large objects, languages, foreign data wrappers and
  servers) and on the database itself is granted to the mapped role, with its grant option;
- ``REASSIGN OWNED`` gives the mapped role the stand-in's objects (PostgreSQL rewrites their ACLs
  to the new owner);
- default privileges (``ALTER DEFAULT PRIVILEGES``) the stand-in held or set are re-declared for
  the mapped role;
- ``DROP OWNED`` and ``DROP ROLE`` remove the stand-in.

The database's own statements (owner, grants, per-role settings) are re-pointed before they run
(:meth:`scripts.postgres.globals.Globals.for_database`). Refused before anything is downloaded: a
mapped-to role the target lacks, and a source role the target already has (its objects elsewhere
on the server would be reassigned too).
"""
from __future__ import annotations

import re
from typing import Callable, Mapping

from psycopg import sql

from scripts.common import UsageError, log

# (catalog, ACL column, the object's name as SQL, GRANT's object clause), for the catalogs of one database.
_GRANTS = [
    ("pg_class", "relacl", "c.oid::regclass::text",
     "CASE c.relkind WHEN 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END"),
    ("pg_namespace", "nspacl", "quote_ident(c.nspname)", "'SCHEMA '"),
    ("pg_proc", "proacl", "c.oid::regprocedure::text", "'ROUTINE '"),
    ("pg_type", "typacl", "c.oid::regtype::text", "'TYPE '"),
    ("pg_largeobject_metadata", "lomacl", "c.oid::text", "'LARGE OBJECT '"),
    ("pg_language", "lanacl", "quote_ident(c.lanname)", "'LANGUAGE '"),
    ("pg_foreign_data_wrapper", "fdwacl", "quote_ident(c.fdwname)", "'FOREIGN DATA WRAPPER '"),
    ("pg_foreign_server", "srvacl", "quote_ident(c.srvname)", "'FOREIGN SERVER '"),
]
_COLUMN_GRANTS = ("SELECT format('GRANT %s (%I) ON TABLE %s TO %I%s', a.privilege_type, c.attname, c.attrelid::regclass,"
                  " %(new)s, CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)"
                  " FROM pg_attribute c, aclexplode(c.attacl) a WHERE a.grantee = %(old)s::oid")
_DATABASE_GRANTS = ("SELECT format('GRANT %s ON DATABASE %I TO %I%s', a.privilege_type, c.datname, %(new)s,"
                    " CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)"
                    " FROM pg_database c, aclexplode(c.datacl) a WHERE c.datname = current_database()"
                    " AND a.grantee = %(old)s::oid")
_DEFAULT_KIND = "CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS'" \
                " WHEN 'T' THEN 'TYPES' ELSE 'SCHEMAS' END"
# Default privileges the stand-in set (FOR ROLE old) or was given (TO old), re-declared for the mapped role.
_DEFAULTS = (f"SELECT format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s GRANT %s ON %s TO %s%s',"
             " CASE WHEN d.defaclrole = %(old)s::oid THEN %(new)s ELSE pg_get_userbyid(d.defaclrole) END,"
             " CASE WHEN d.defaclnamespace = 0 THEN '' ELSE ' IN SCHEMA ' || quote_ident(n.nspname) END,"
             f" a.privilege_type, {_DEFAULT_KIND},"
             " CASE WHEN a.grantee = 0 THEN 'PUBLIC' WHEN a.grantee = %(old)s::oid THEN quote_ident(%(new)s)"
             " ELSE quote_ident(pg_get_userbyid(a.grantee)) END,"
             " CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)"
             " FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace,"
             " aclexplode(d.defaclacl) a WHERE d.defaclrole = %(old)s::oid OR a.grantee = %(old)s::oid")


def parse(text: str | None) -> dict[str, str]:
    """``old=new[,old2=new2]`` as a mapping; a malformed, repeated or self-mapping entry is a usage error."""
    if not text:
        return {}
    out: dict[str, str] = {}
    for entry in (e.strip() for e in text.split(",")):
        old, sep, new = (p.strip() for p in entry.partition("="))
        if not sep or not old or not new:
            raise UsageError(f"--role-map entry {entry!r} is not OLD=NEW (e.g. --role-map app=app_staging)")
        if old in out:
            raise UsageError(f"--role-map maps {old!r} twice")
        if old == new:
            raise UsageError(f"--role-map entry {entry!r} maps a role to itself")
        out[old] = new
    return out


def check(conn, mapping: Mapping[str, str], server: str) -> str:
    """Before anything is downloaded: every mapped-to role exists on the target, no source role does."""
    existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)",
                                           (list(mapping) + list(mapping.values()),)).fetchall()}
    missing = sorted(set(mapping.values()) - existing)
    if missing:
        raise UsageError(f"--role-map: role {', '.join(missing)} does not exist on {server}; create it first "
                         "(CREATE ROLE ...) or map to an existing role")
    present = sorted(set(mapping) & existing)
    if present:
        raise UsageError(f"--role-map: source role {', '.join(present)} exists on {server}; map only roles the "
                         "target does not have (its objects elsewhere on the server would be reassigned too)")
    return "ownership and grants of " + ", ".join(f"{o} -> {n}" for o, n in mapping.items())


def create_stand_ins(conn, mapping: Mapping[str, str]) -> list[str]:
    """The source roles, for the restore only: NOLOGIN, no password, no memberships."""
    made = []
    for old in mapping:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(old)))
        made.append(old)
    return made


def hand_over(conn, mapping: Mapping[str, str]) -> None:
    """In the restored database (``conn``): the stand-ins' grants, objects and defaults go to the mapped roles."""
    for old, new in mapping.items():
        (oid,) = conn.execute("SELECT oid FROM pg_roles WHERE rolname = %s", (old,)).fetchone()
        literal = sql.Literal(new).as_string(conn)
        queries = [f"SELECT format('GRANT %s ON %s%s TO %I%s', a.privilege_type, {kind}, {name}, %(new)s,"
                   f" CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)"
                   f" FROM {catalog} c, aclexplode(c.{column}) a WHERE a.grantee = %(old)s::oid"
                   for catalog, column, name, kind in _GRANTS] + [_COLUMN_GRANTS, _DATABASE_GRANTS, _DEFAULTS]
        # no parameters: format()'s own %s stay as they are; the role's oid and name are inlined as literals
        statements = [row[0] for q in queries for row in conn.execute(
            q.replace("%(old)s", str(int(oid))).replace("%(new)s", literal)).fetchall()]
        for stmt in statements:
            conn.execute(stmt)
        conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(old), sql.Identifier(new)))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(old)))


def drop_stand_ins(conn, roles: list[str]) -> None:
    """Remove the stand-ins (after :func:`hand_over`, or once a failed restore's scratch database is gone)."""
    for role in roles:
        try:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        except Exception as exc:  # noqa: BLE001 - reported, never masks the restore's own outcome
            log.error("could not drop role %s, created for the restore only: %s", role, str(exc).splitlines()[0])


_ROLE_NAMED = re.compile(r'(OWNER TO |\bTO |\bFROM |^ALTER ROLE )("(?:[^"]|"")+"|[a-z_][a-z0-9_$]*)')


def retarget(statement: str, mapping: Mapping[str, str], ident: Callable[[str], str]) -> str:
    """A database statement (owner, grant, per-role setting) with its role names mapped; others unchanged.

    ``ident`` quotes a role name as SQL. Comments, labels and settings are left alone: their text
    is not a role name even where it reads like one.
    """
    if not mapping or not (statement.startswith(("GRANT ", "REVOKE ", "ALTER ROLE "))
                           or (statement.startswith("ALTER DATABASE ") and " OWNER TO " in statement)):
        return statement

    def swap(m: re.Match) -> str:
        name = m.group(2)[1:-1].replace('""', '"') if m.group(2).startswith('"') else m.group(2)
        return m.group(1) + (ident(mapping[name]) if name in mapping else m.group(2))
    if statement.startswith("ALTER ROLE "):  # only the role: the rest is a setting
        return _ROLE_NAMED.sub(swap, statement, count=1)
    return _ROLE_NAMED.sub(swap, statement)
