"""Physical names: derived from project + stack, valid for their service, never colliding across stacks."""
import re

import pytest
from stack_values import config, example_values, with_databases

from stacks import naming
from stacks.config import parse_config

BUCKET_RE = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
RDS_RE = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,62}(?<!-)$")


def test_names_match_the_contract_fixture():
    cfg = config()
    assert naming.vault_bucket_name(cfg, "primary") == "pilotlight-dr-vault-us-east-1-123456789012"
    assert naming.vault_bucket_name(cfg, "dr") == "pilotlight-dr-vault-us-west-2-123456789012"
    assert naming.key_alias(cfg) == "alias/pilotlight-dr-vault"
    assert naming.standby_identifier(cfg, cfg.databases[0]) == "pilotlight-dr-orders-standby"
    assert naming.topic_name(cfg) == "pilotlight-dr-alarms"
    assert naming.role_arn(cfg, "r") == "arn:aws:iam::123456789012:role/r"


def test_two_stacks_never_share_a_physical_name():
    a = parse_config(example_values(), project="pilotlight", stack="dr")
    b = parse_config(example_values(), project="pilotlight", stack="dr-staging")
    for fn in (naming.key_alias, naming.topic_name, naming.replication_role_name, naming.subnet_group_name,
               naming.backup_writer_role_name, naming.restore_reader_role_name):
        assert fn(a) != fn(b)
    assert naming.vault_bucket_name(a, "dr") != naming.vault_bucket_name(b, "dr")
    assert naming.standby_identifier(a, a.databases[0]) != naming.standby_identifier(b, b.databases[0])


def test_long_and_odd_stack_names_stay_valid_and_distinct():
    long = "Org_Team.Production-Disaster-Recovery-Environment-Number"
    a = parse_config(with_databases(example_values(), 20), project="pilotlight", stack=long + "1")
    b = parse_config(with_databases(example_values(), 20), project="pilotlight", stack=long + "2")
    names = set()
    for cfg in (a, b):
        for side in ("primary", "dr"):
            bucket = naming.vault_bucket_name(cfg, side)
            assert BUCKET_RE.match(bucket) and len(bucket) <= 63, bucket
            names.add(bucket)
        for db in cfg.databases:
            ident = naming.standby_identifier(cfg, db)
            assert RDS_RE.match(ident), ident
            names.add(ident)
        roles = {fn(cfg) for fn in (naming.replication_role_name, naming.backup_writer_role_name,
                                    naming.restore_reader_role_name, naming.monitoring_role_name)}
        assert len(roles) == 4 and all(len(r) <= 64 for r in roles), roles
    assert len(names) == 2 * (2 + 20)


def test_side_must_be_primary_or_dr():
    with pytest.raises(ValueError, match="side must be"):
        naming.vault_bucket_name(config(), "secondary")
