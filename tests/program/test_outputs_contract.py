"""The outputs builder produces exactly contract v1: scripts.contract.parse accepts it, field for field."""
import json
from pathlib import Path

import pytest
from stack_values import config

from scripts.contract import parse
from stacks import naming
from stacks.outputs import outputs_document, primary_endpoint, promotion_document, restore_target

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "outputs.json"
KEY_ID = "mrk-1234abcd12ab34cd56ef1234567890ab"


def plain_document(cfg, sandbox=None):
    """What the sandbox passes: plain strings everywhere."""
    keys = {
        side: {"arn": f"arn:aws:kms:{cfg.region(side)}:123456789012:key/{KEY_ID}", "alias": naming.key_alias(cfg)}
        for side in ("primary", "dr")
    }
    buckets = {
        side: {"bucket": naming.vault_bucket_name(cfg, side), "arn": f"arn:aws:s3:::{naming.vault_bucket_name(cfg, side)}"}
        for side in ("primary", "dr")
    }
    databases = []
    for db in cfg.databases:
        ident = naming.standby_identifier(cfg, db)
        host = f"{ident}.c9akciq32.us-west-2.rds.amazonaws.com"
        databases.append(
            {
                "config": db,
                "primary": primary_endpoint(db),
                "standby": {"identifier": ident, "arn": f"arn:aws:rds:us-west-2:123456789012:db:{ident}", "host": host},
                "dns": {
                    "recordName": db.record_name,
                    "healthCheckId": "abcdef01-2345-6789-abcd-ef0123456789",
                    "primaryTarget": db.primary_host,
                    "drTarget": host,
                    "switch": {"healthCheckId": "fedcba98-7654-3210-fedc-ba9876543210",
                               "threshold": {"primary": 1, "dr": 2}},
                },
                "promotion": promotion_document(cfg),
                "failback": {
                    "generation": db.generation,
                    "primaryIdentifier": naming.failback_primary_identifier(cfg, db),
                    "standbyIdentifier": naming.standby_identifier(cfg, db, db.generation + 1),
                    "standbyUrn": "urn:pulumi:dr::pilotlight::pilotlight:dr:Standby$aws:rds/instance:Instance::"
                                  f"{naming.standby_logical_name(db)}-instance",
                },
                "restore": {"dr": restore_target(
                    subnet_group_name=naming.subnet_group_name(cfg), security_group_ids=["sg-0123456789abcdef0"],
                    parameter_group_name=naming.parameter_group_name(cfg), kms_key_id=keys["dr"]["arn"],
                    instance_class=db.instance_class,
                    automated_backups_arn="arn:aws:rds:us-west-2:123456789012:auto-backup:ab-abcdefghijklmnopqrstuvwxyz",
                    engine_version=db.engine_version)},
            }
        )
    return outputs_document(
        cfg,
        keys=keys,
        buckets=buckets,
        zone_id=cfg.dns.zone_id,
        databases=databases,
        topic_arn="arn:aws:sns:us-east-1:123456789012:pilotlight-dr-alarms",
        sandbox=sandbox,
    )


def test_example_stack_outputs_equal_the_contract_fixture():
    assert plain_document(config()) == json.loads(FIXTURE.read_text())


def test_document_parses_as_contract_v1():
    contract = parse(plain_document(config()))
    assert contract.tiers["daily"].slack_seconds == 7200
    assert contract.database("orders").standby.identifier == "pilotlight-dr-orders-standby"
    assert contract.object_lock_mode == "GOVERNANCE"


def test_sandbox_section_is_passed_through_and_parses():
    sandbox = {
        "stateDir": "/tmp/s",
        "awsEndpoints": {"us-east-1": "http://127.0.0.1:5001", "us-west-2": "http://127.0.0.1:5002"},
        "dns": {"host": "127.0.0.1", "port": 5353},
        "superuser": "postgres",
        "appUser": "app",
        "passfile": "/tmp/s/pgpass",
        "clusters": {s: {"host": "127.0.0.1", "port": p, "dataDir": f"/tmp/s/{s}"} for s, p in (("primary", 5433), ("dr", 5434))},
    }
    contract = parse(plain_document(config(), sandbox=sandbox))
    assert contract.sandbox.aws_endpoints["us-west-2"] == "http://127.0.0.1:5002"
    assert contract.aws_endpoint("dr") is None  # the tools read endpoints from `access`, never from `sandbox`


def test_access_section_gives_the_tools_endpoints_resolver_and_logins():
    doc = plain_document(config())
    doc["access"] = {"awsEndpoints": {"us-west-2": "https://vpce.example"}, "credentialsFile": "/creds",
                     "dnsResolver": {"host": "127.0.0.1", "port": 5353}, "authoritativePort": 5353,
                     "database": {"user": "app", "adminUser": "master", "passfile": "/pgpass", "sslmode": "verify-full"}}
    contract = parse(doc)
    assert contract.aws_endpoint("dr") == "https://vpce.example" and contract.aws_endpoint("primary") is None
    assert contract.access.dns_resolver == ("127.0.0.1", 5353) and contract.access.database.admin_user == "master"


def test_active_side_is_reported():
    assert parse(plain_document(config(active="dr"))).active == "dr"


def test_databases_must_match_config():
    cfg = config()
    with pytest.raises(ValueError, match="must match the config"):
        outputs_document(cfg, keys={"primary": {}, "dr": {}}, buckets={"primary": {}, "dr": {}}, zone_id="Z", databases=[], topic_arn="t")
