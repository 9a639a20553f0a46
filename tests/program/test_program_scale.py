"""A 20-database stack evaluates, and no two resources share a URN, a logical name or a physical name."""
from collections import Counter

import pytest
from scripts.preview.runtime import run_stack
from stack_values import config, example_values, with_databases

from scripts.contract import parse

PHYSICAL = {
    "aws:s3/bucket:Bucket": "bucket",
    "aws:rds/instance:Instance": "identifier",
    "aws:cloudwatch/metricAlarm:MetricAlarm": "name",
    "aws:sns/topic:Topic": "name",
    "aws:iam/role:Role": "name",
}


@pytest.fixture(scope="module")
def twenty():
    return run_stack(config(with_databases(example_values(), 20)))


def test_twenty_databases_evaluate_with_unique_urns_and_names(twenty):
    dupes = [urn for urn, n in Counter(twenty.urns).items() if n > 1]
    assert not dupes, dupes
    names = Counter(r.name for r in twenty.resources.values() if not r.type.startswith("pulumi:providers:"))
    # Route 53 records share their physical name by design (one PRIMARY, one SECONDARY); logical names never repeat.
    assert [n for n, c in names.items() if c > 1] == []
    for typ, key in PHYSICAL.items():
        physical = Counter((r.region, r.inputs[key]) for r in twenty.of_type(typ))
        assert [p for p, c in physical.items() if c > 1] == [], typ


def test_every_database_is_protected_and_has_its_own_standby_dns_and_alarms(twenty):
    instances = twenty.of_type("aws:rds/instance:Instance")
    assert len(instances) == 20 and all(i.protect and i.retain_on_delete for i in instances)
    assert len(twenty.of_type("aws:route53/record:Record")) == 40
    assert len(twenty.of_type("aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication")) == 20
    contract = parse(twenty.document)
    assert len(contract.databases) == 20
    assert len({db.standby.identifier for db in contract.databases}) == 20
    # Shared pieces stay shared: one vault pair, one key pair, one standby network.
    assert len(twenty.of_type("aws:s3/bucket:Bucket")) == 3  # two vault buckets and the audit trail's
    assert len(twenty.of_type("aws:rds/subnetGroup:SubnetGroup")) == 1
