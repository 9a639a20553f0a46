"""Database logins at run time: a Secrets Manager secret or an RDS IAM token, into a 0600 passfile, never shown.

Secrets Manager is moto's (in process); the IAM token is boto3's own ``generate_db_auth_token``
(computed locally), checked for the host, port, user and region it was made for.
"""
from __future__ import annotations

import json
import os
import stat
import urllib.parse
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from psycopg.conninfo import conninfo_to_dict

from scripts import aws
from scripts.contract import ContractError, parse
from scripts.postgres import credentials
from scripts.postgres.dsn import side_dsn

FIXTURE = Path(__file__).parents[1] / "fixtures" / "outputs.json"
PASSWORD = {"us-east-1": "pr1mary:pass\\word", "us-west-2": "dr-pass-0f-the-replica"}


def contract_with(creds: dict, **access) -> "Contract":  # noqa: F821 - the contract's own type
    doc = json.loads(FIXTURE.read_text())
    doc["databases"][0]["credentials"] = creds
    doc.pop("access", None)
    if access:
        doc["access"] = {"database": access}
    return parse(doc)


@pytest.fixture
def mocked(monkeypatch):
    for var, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                       ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(var, value)
    aws._client.cache_clear()
    credentials._cache.clear()
    with mock_aws():
        yield
    aws._client.cache_clear()
    credentials._cache.clear()


def secret(region: str, value) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return boto3.client("secretsmanager", region_name=region).create_secret(
        Name="pilotlight/orders-login", SecretString=text)["ARN"]


def passfile_lines(dsn: str) -> list[str]:
    path = Path(conninfo_to_dict(dsn)["passfile"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    return path.read_text().splitlines()


def test_each_side_logs_in_with_the_secret_of_its_own_region(mocked):
    arns = {side: secret(region, {"username": "master", "password": PASSWORD[region], "host": "elsewhere"})
            for side, region in (("primary", "us-east-1"), ("dr", "us-west-2"))}
    c = contract_with({"user": "pilotlight", "iamAuth": False, "secretArn": arns})
    for side, region in (("primary", "us-east-1"), ("dr", "us-west-2")):
        dsn = side_dsn(c, side, superuser=True)
        parts = conninfo_to_dict(dsn)
        assert parts["user"] == "master" and "password" not in parts
        assert PASSWORD[region] not in dsn
        host = c.database().endpoint(side).host
        escaped = PASSWORD[region].replace("\\", "\\\\").replace(":", "\\:")
        assert f"{host}:{c.database().port_of(side)}:*:master:{escaped}" in passfile_lines(dsn)


def test_the_other_regions_copy_is_read_when_the_sides_own_is_unreadable(mocked):
    primary = secret("us-east-1", {"username": "master", "password": PASSWORD["us-east-1"]})
    missing = primary.replace("us-east-1", "us-west-2")  # the replica was never made
    c = contract_with({"user": "pilotlight", "iamAuth": False, "secretArn": {"primary": primary, "dr": missing}})
    dsn = side_dsn(c, "dr", superuser=True)
    assert any(line.endswith(":master:" + PASSWORD["us-east-1"].replace("\\", "\\\\").replace(":", "\\:"))
               for line in passfile_lines(dsn))


def test_an_unreadable_secret_is_one_line_naming_the_arns_and_the_permission(mocked):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf"
    c = contract_with({"user": "pilotlight", "iamAuth": False, "secretArn": {"primary": arn}})
    with pytest.raises(credentials.CredentialsError) as err:
        side_dsn(c, "primary", superuser=True)
    message = str(err.value)
    assert "\n" not in message and arn in message and "ResourceNotFoundException" in message
    assert "secretsmanager:GetSecretValue" in message


def test_a_secret_without_password_is_refused_without_showing_its_value(mocked):
    arn = secret("us-east-1", {"username": "master", "pass": "l3aky-value"})
    c = contract_with({"user": "pilotlight", "iamAuth": False, "secretArn": {"primary": arn}})
    with pytest.raises(credentials.CredentialsError) as err:
        side_dsn(c, "primary", superuser=True)
    assert "'password'" in str(err.value) and "l3aky-value" not in str(err.value)


def test_a_plain_string_secret_is_the_password_of_the_configured_user(mocked):
    arn = secret("us-east-1", "just-the-password")
    c = contract_with({"user": "pilotlight", "iamAuth": False, "secretArn": {"primary": arn}})
    dsn = side_dsn(c, "primary", superuser=True)
    assert conninfo_to_dict(dsn)["user"] == "pilotlight"
    assert passfile_lines(dsn)[-1].endswith(":pilotlight:just-the-password")


def test_iam_auth_logs_in_with_a_token_made_for_that_host_port_user_and_region(mocked):
    c = contract_with({"user": "pilotlight_iam", "iamAuth": True})
    for side, region in (("primary", "us-east-1"), ("dr", "us-west-2")):
        dsn = side_dsn(c, side, superuser=True)
        host, port = c.database().endpoint(side).host, c.database().port_of(side)
        parts = conninfo_to_dict(dsn)
        assert parts["user"] == "pilotlight_iam" and "password" not in parts and "X-Amz" not in dsn
        line = next(l for l in passfile_lines(dsn) if l.startswith(f"{host}:{port}:*:pilotlight_iam:"))
        token = line.split(":pilotlight_iam:", 1)[1].replace("\\:", ":").replace("\\\\", "\\")
        assert token.startswith(f"{host}:{port}/?")
        query = urllib.parse.parse_qs(urllib.parse.urlsplit("https://" + token).query)
        assert query["Action"] == ["connect"] and query["DBUser"] == ["pilotlight_iam"]
        assert f"/{region}/rds-db/aws4_request" in query["X-Amz-Credential"][0]


def test_the_access_sections_application_user_still_logs_in_as_itself(mocked):
    """The sandbox's application stand-in (access.database.user) is not the tools' login."""
    arn = secret("us-east-1", {"username": "master", "password": "x"})
    c = contract_with({"user": "pilotlight", "iamAuth": False, "secretArn": {"primary": arn}},
                      user="app", adminUser="postgres", passfile="/somewhere/pgpass")
    app = conninfo_to_dict(side_dsn(c, "primary"))
    admin = conninfo_to_dict(side_dsn(c, "primary", superuser=True))
    assert (app["user"], app["passfile"]) == ("app", "/somewhere/pgpass")
    assert admin["user"] == "master" and admin["passfile"] != "/somewhere/pgpass"


def test_contract_refuses_credentials_that_are_both_or_not_arns():
    with pytest.raises(ContractError, match="exclude each other"):
        contract_with({"user": "u", "iamAuth": True,
                       "secretArn": {"primary": "arn:aws:secretsmanager:us-east-1:123456789012:secret:a-AbCdEf"}})
    with pytest.raises(ContractError, match="not a Secrets Manager secret ARN"):
        contract_with({"user": "u", "secretArn": {"primary": "hunter2"}})
