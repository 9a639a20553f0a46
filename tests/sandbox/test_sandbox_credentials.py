"""On the sandbox the tools log in as on AWS: the database's secret read at run time, TLS verify-full
against the sandbox's own CA and the endpoint's DNS name; another CA or another name is refused."""
from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography.hazmat.primitives import serialization
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from scripts import aws
from scripts.common import PilotlightError
from scripts.contract import load_file
from scripts.postgres import client as pg
from scripts.postgres import credentials
from scripts.postgres.dsn import side_dsn
from scripts.sandbox import tls
from stacks.vocabulary import SIDES


def test_the_contract_names_the_secret_and_the_ca_never_a_password(sandbox):
    c = sandbox.contract
    creds = c.database().credentials
    assert creds is not None and not creds.iam_auth
    assert creds.secret_arns["dr"] == creds.secret_arns["primary"].replace(c.regions["primary"], c.regions["dr"])
    access = c.access.database
    assert access.sslmode == "verify-full" and access.sslrootcert.endswith("ca.pem")
    text = sandbox.outputs_path.read_text()
    for line in (sandbox.state_dir / "pgpass").read_text().splitlines():
        assert line.rsplit(":", 1)[1] not in text


@pytest.mark.parametrize("side", SIDES)
def test_tool_sessions_log_in_with_the_secret_over_verified_tls(sandbox, side):
    dsn = side_dsn(sandbox.contract, side, superuser=True)
    parts = conninfo_to_dict(dsn)
    assert parts["sslmode"] == "verify-full" and parts["hostaddr"] == "127.0.0.1"
    assert parts["host"].endswith(f".{sandbox.contract.regions[side]}.{sandbox.contract.zone_name}")
    assert "pilotlight-login-" in parts["passfile"] and parts["passfile"] != str(sandbox.state_dir / "pgpass")
    assert "password" not in parts
    with pg.connect(dsn) as conn:
        ssl, user = conn.execute("SELECT ssl, current_user FROM pg_stat_ssl, current_user"
                                 " WHERE pid = pg_backend_pid()").fetchone()
    assert ssl and user == sandbox.contract.sandbox.superuser


def test_a_server_certificate_from_another_ca_is_refused_in_one_line(sandbox, tmp_path):
    _, other = tls.authority("Not the sandbox CA")
    bundle = tmp_path / "other-ca.pem"
    bundle.write_bytes(other.public_bytes(serialization.Encoding.PEM))
    access = dataclasses.replace(sandbox.contract.access.database, sslrootcert=str(bundle))
    c = dataclasses.replace(sandbox.contract, access=dataclasses.replace(sandbox.contract.access, database=access))
    with pytest.raises(PilotlightError) as err:
        pg.connect(side_dsn(c, "primary", superuser=True))
    message = str(err.value)
    assert "\n" not in message and "TLS refused" in message and str(bundle) in message


def test_a_name_the_certificate_does_not_carry_is_refused(sandbox):
    parts = conninfo_to_dict(side_dsn(sandbox.contract, "primary", superuser=True))
    parts["host"] = "orders.somewhere-else.example.org"  # same server (hostaddr), a name not in its certificate
    with pytest.raises(PilotlightError) as err:
        pg.connect(make_conninfo(**parts))
    assert "\n" not in str(err.value) and "does not match host name" in str(err.value)
    assert "verify-full" in str(err.value)


def test_a_missing_ca_bundle_names_where_to_get_one(sandbox, tmp_path):
    access = dataclasses.replace(sandbox.contract.access.database, sslrootcert=str(tmp_path / "absent.pem"))
    c = dataclasses.replace(sandbox.contract, access=dataclasses.replace(sandbox.contract.access, database=access))
    with pytest.raises(PilotlightError, match="no CA bundle at .*absent.pem.*PILOTLIGHT_SSLROOTCERT"):
        pg.connect(side_dsn(c, "primary", superuser=True))


def test_a_wrong_secret_is_what_the_tools_use(sandbox):
    """The secret, not the sandbox passfile, logs the tools in: a wrong password in it fails the login."""
    c = load_file(sandbox.outputs_path)
    client = aws.client(c, "secretsmanager", "primary")
    arn = c.database().credentials.secret_arns["primary"]
    good = client.get_secret_value(SecretId=arn)["SecretString"]
    client.put_secret_value(SecretId=arn, SecretString=json.dumps({**json.loads(good), "password": "wrong"}))
    credentials._cache.clear()
    try:
        with pytest.raises(PilotlightError, match="password authentication failed"):
            pg.connect(side_dsn(c, "primary", superuser=True))
    finally:
        client.put_secret_value(SecretId=arn, SecretString=good)
        credentials._cache.clear()


def test_a_backup_passes_the_secret_to_no_child_argv_or_environment(sandbox, monkeypatch):
    """pg_dump and pg_dumpall get the DSN with passfile=, never the password (argv is world-readable)."""
    import subprocess

    from scripts.vault.backup import perform_backup
    c = load_file(sandbox.outputs_path)
    password = json.loads(aws.client(c, "secretsmanager", "primary").get_secret_value(
        SecretId=c.database().credentials.secret_arns["primary"])["SecretString"])["password"]
    seen: list[str] = []
    real_popen, real_run = subprocess.Popen, subprocess.run

    def record(args, kwargs):
        seen.append(" ".join(map(str, args)) + " " + " ".join(f"{k}={v}" for k, v in (kwargs.get("env") or {}).items()))

    def popen(args, *a, **kw):
        record(args, kw)
        return real_popen(args, *a, **kw)

    def run(args, *a, **kw):
        record(args, kw)
        return real_run(args, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", popen)
    monkeypatch.setattr(subprocess, "run", run)
    perform_backup(c, "hourly")
    dumps = [line for line in seen if "pg_dump" in line and "dbname=" in line]
    assert dumps and all("passfile=" in line for line in dumps)
    assert not [line for line in seen if password in line]
