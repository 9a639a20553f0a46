"""Stack outputs: the exported document is contract v1, with no secrets; the real config path works."""
import json
import runpy

import pulumi
import pytest
from scripts.preview.runtime import run_stack
from stack_values import ROOT, config, example_values

from scripts.contract import parse
from stacks.config import ConfigError, from_pulumi
from stacks.dr import build


def test_exported_document_parses_as_the_contract(example):
    contract = parse(example.document)
    assert contract.project == "pilotlight" and contract.stack == "dr" and contract.active == "primary"
    assert contract.regions == {"primary": "us-east-1", "dr": "us-west-2"}
    assert contract.buckets["dr"].bucket == "pilotlight-dr-vault-us-west-2-123456789012"
    db = contract.database("orders")
    assert db.standby.identifier == "pilotlight-dr-orders-standby"
    assert db.standby.host.endswith(".us-west-2.rds.amazonaws.com")
    assert db.dns.dr_target == db.standby.host and db.dns.primary_target == db.primary.host
    assert contract.keys["primary"].alias == "alias/pilotlight-dr-vault"
    assert contract.objectives["regional-outage"].rto_seconds == 900


def test_a_dr_point_in_time_restore_lands_in_the_standby_network_with_the_dr_key(example):
    """Restores default to the default VPC, subnet group and parameter group (RestoreDBInstanceToPointInTime
    API reference): the contract must carry the stack's own, and the replicated backups' ARN."""
    target = parse(example.document).database("orders").restore["dr"]
    standby = example.of_type("aws:rds/instance:Instance")[0].inputs
    assert target.subnet_group_name == standby["dbSubnetGroupName"]
    assert target.parameter_group_name == standby["parameterGroupName"]
    assert list(target.security_group_ids) == standby["vpcSecurityGroupIds"]
    assert target.kms_key_id == standby["kmsKeyId"] and target.instance_class == standby["instanceClass"]
    replication = example.of_type("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")
    assert replication[0].inputs["kmsKeyId"] == target.kms_key_id
    assert target.automated_backups_arn == replication[0].id


def test_after_failover_the_contract_says_dr(failed_over):
    assert parse(failed_over.document).active == "dr"


def test_every_top_level_key_is_a_stack_export(example):
    stack = example.stack
    assert set(stack.document) == {
        "contractVersion", "project", "stack", "active", "regions", "keys", "vault", "dns",
        "databases", "alarms", "objectives", "recovery", "jobs", "contacts",
    }


def stack_config_values(values):
    """What the Pulumi engine hands the program: namespaced keys, structured values as JSON strings."""
    out = {"aws:region": "us-east-1"}
    for key, value in values.items():
        out[f"pilotlight:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return out


def test_real_config_path_through_from_pulumi():
    cfg = config()
    run = run_stack(cfg, config=stack_config_values(example_values()), program=lambda: build(from_pulumi()))
    parsed = parse(run.document)
    assert parsed.database().name == "orders" and parsed.ttl == 30
    assert run.stack.cfg == cfg


def test_a_password_in_the_engine_config_is_refused_without_echoing_it():
    """Issue 10, item 13: a promoted standby keeps the primary's password; the stack takes none."""
    settings = stack_config_values(example_values()) | {"pilotlight:dbPassword": "from-secret-config"}
    with pytest.raises(ConfigError, match=r"^pilotlight:dbPassword: no longer used") as info:
        run_stack(config(), config=settings, program=lambda: build(from_pulumi()))
    assert "from-secret-config" not in str(info.value)


def test_from_pulumi_rejects_unknown_keys_and_broken_json():
    settings = stack_config_values(example_values()) | {"pilotlight:activ": "dr"}
    with pytest.raises(ConfigError, match=r"^pilotlight:activ: unknown key; did you mean 'active'\?$"):
        run_stack(config(), config=settings, program=lambda: build(from_pulumi()))
    settings = stack_config_values(example_values()) | {"pilotlight:dns": "{not json"}
    with pytest.raises(ConfigError, match=r"^pilotlight:dns = .*must be valid JSON"):
        run_stack(config(), config=settings, program=lambda: build(from_pulumi()))


def test_entry_point_ends_a_bad_preview_with_one_line_and_no_traceback():
    """__main__.py turns config and objective errors into pulumi.RunError (printed without a stack trace)."""
    values = example_values()
    values["drRegion"] = "us-east-1"
    settings = stack_config_values(values)
    with pytest.raises(pulumi.RunError, match=r"^pilotlight:drRegion = 'us-east-1': must differ from primaryRegion"):
        run_stack(config(), config=settings, program=lambda: runpy.run_path(str(ROOT / "__main__.py")))
