"""Database logins at run time: a Secrets Manager secret or an RDS IAM auth token, never shown.

The contract names only where a login comes from (``databases[].credentials``: secret ARNs per
region, or ``iamAuth`` and the user). The value is fetched here, when a DSN is built, and written
to a libpq password file (mode 0600, in a private 0700 directory removed when the process exits)
that the DSN names with ``passfile=``. So no password or token is ever in a DSN string, a
process's argv, a log line, a report or an exception: psycopg and pg_dump/pg_restore/pg_dumpall
read the same file, the way libpq reads any passfile.

Secrets: ``secretsmanager:GetSecretValue`` on the secret of the region of the side connected to
(the DR one is the replica, same ARN in the DR region), then the other region's; the value is a
JSON object with ``password`` and usually ``username`` (an RDS-managed master secret also has
``host``/``port``/``dbname``, which are ignored: the endpoint is the contract's, and after a
failover it is not the one the secret names), or a plain string, the password itself.
IAM: boto3's ``rds.generate_db_auth_token`` (SigV4 presigned, computed locally, valid
15 minutes; libpq uses it only to log in, so an open session outlives it).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
import threading
import time
from typing import Mapping

from botocore.exceptions import BotoCoreError, ClientError

from scripts import aws
from scripts.common import Exit, PilotlightError
from scripts.contract import Contract, Credentials
from stacks.vocabulary import SIDES

SECRET_TTL_SECONDS = 300.0  # a rotated secret is picked up within this long
TOKEN_TTL_SECONDS = 600.0  # tokens are valid 15 minutes; a fresh one well before that
_cache: dict[tuple, tuple[float, str, str]] = {}
_cache_lock = threading.Lock()


class CredentialsError(PilotlightError):
    """A login could not be obtained; the message names the secret or user, never a value."""

    def __init__(self, message: str):
        super().__init__(message, Exit.FAILED)


def login_params(contract: Contract, credentials: Credentials, side: str, host: str, port: int) -> dict[str, str]:
    """``user`` and ``passfile`` for libpq: the database's login for ``host:port``, fetched now."""
    user, password = (_iam_token(contract, credentials, side, host, port) if credentials.iam_auth
                      else _secret(contract, credentials, side))
    return {"user": user, "passfile": PASSFILE.add(host, port, user, password)}


def _cached(key: tuple, ttl: float, fetch) -> tuple[str, str]:
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
        if hit and now - hit[0] < ttl:
            return hit[1], hit[2]
    user, password = fetch()
    with _cache_lock:
        _cache[key] = (now, user, password)
    return user, password


def _secret(contract: Contract, credentials: Credentials, side: str) -> tuple[str, str]:
    """(user, password) from the secret of ``side``'s region first, then the other region's copy."""
    if not credentials.secret_arns:
        raise CredentialsError(f"no login for user {credentials.user!r}: the contract's credentials name no secret "
                               "and no iamAuth; set credentialsSecretArn or iamAuth in the stack config")
    order = [s for s in (side, *SIDES) if s in credentials.secret_arns]
    return _cached(("secret", tuple(credentials.secret_arns.get(s) for s in dict.fromkeys(order))), SECRET_TTL_SECONDS,
                   lambda: _fetch_secret(contract, credentials, list(dict.fromkeys(order))))


def _fetch_secret(contract: Contract, credentials: Credentials, sides: list[str]) -> tuple[str, str]:
    failures = []
    for side in sides:
        arn = credentials.secret_arns[side]
        try:
            value = aws.client(contract, "secretsmanager", side).get_secret_value(SecretId=arn)
        except ClientError as exc:
            failures.append(f"{arn}: {exc.response.get('Error', {}).get('Code', 'error')}")
            continue
        except BotoCoreError as exc:
            failures.append(f"{arn}: {type(exc).__name__}")
            continue
        return _parse_secret(value.get("SecretString"), arn, credentials.user)
    raise CredentialsError(f"cannot read the database secret ({'; '.join(failures)}); the role needs "
                           "secretsmanager:GetSecretValue on it (and kms:Decrypt on its key)")


def _parse_secret(text: str | None, arn: str, default_user: str) -> tuple[str, str]:
    """(user, password) of a secret's string; a JSON object with ``password``, or the password itself."""
    if not text:
        raise CredentialsError(f"secret {arn} has no SecretString (a binary secret cannot hold a database login)")
    try:
        doc = json.loads(text)
    except ValueError:
        return default_user, text
    if not isinstance(doc, Mapping):
        return default_user, text
    password, user = doc.get("password"), doc.get("username") or default_user
    if not isinstance(password, str) or not password:
        raise CredentialsError(f"secret {arn} has no 'password' field (an RDS-managed secret has username and password)")
    if not isinstance(user, str):
        raise CredentialsError(f"secret {arn}: 'username' must be a string")
    return user, password


def _iam_token(contract: Contract, credentials: Credentials, side: str, host: str, port: int) -> tuple[str, str]:
    region = contract.regions[side]

    def fetch() -> tuple[str, str]:
        try:
            token = aws.client(contract, "rds", side).generate_db_auth_token(
                DBHostname=host, Port=int(port), DBUsername=credentials.user, Region=region)
        except (BotoCoreError, ClientError) as exc:
            raise CredentialsError(f"cannot make an RDS IAM auth token for {credentials.user}@{host}:{port} "
                                   f"({type(exc).__name__}): the tools need AWS credentials") from None
        return credentials.user, token
    return _cached(("iam", host, int(port), credentials.user, region), TOKEN_TTL_SECONDS, fetch)


class _Passfile:
    """One libpq password file per process, rewritten (atomically, 0600) when a login changes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str, str], str] = {}
        self._dir: str | None = None

    @property
    def held(self) -> bool:
        """Whether this process holds a passfile now (a caller's logins, made before a command ran)."""
        return self._dir is not None

    def forget(self) -> None:
        """Remove the file and its directory: a login never outlives the command that fetched it."""
        with self._lock:
            if self._dir is not None:
                shutil.rmtree(self._dir, ignore_errors=True)
            self._dir, self._entries = None, {}

    def add(self, host: str, port: int, user: str, password: str) -> str:
        with self._lock:
            if self._dir is None:
                self._dir = tempfile.mkdtemp(prefix="pilotlight-login-")  # 0700
                atexit.register(shutil.rmtree, self._dir, True)  # if the command did not forget()
            path = os.path.join(self._dir, "pgpass")
            key = (host, str(port), user)
            if self._entries.get(key) != password or not os.path.exists(path):
                self._entries[key] = password
                tmp = path + ".new"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.writelines(f"{_esc(h)}:{p}:*:{_esc(u)}:{_esc(pw)}\n" for (h, p, u), pw in self._entries.items())
                os.replace(tmp, path)
            return path


def _esc(value: str) -> str:
    """libpq passfile escaping: ``\\`` and ``:`` (IAM tokens contain both ``:`` and ``/``)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


PASSFILE = _Passfile()


def forget() -> None:
    """Drop every fetched login: the passfile and the cached values (the CLI calls it when a command ends)."""
    PASSFILE.forget()
    with _cache_lock:
        _cache.clear()
