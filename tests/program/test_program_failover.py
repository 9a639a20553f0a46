"""Failover by config flag: flipping `pilotlight:active` changes exactly the expected resources.

Both runs register the same stack; comparing registrations URN by URN shows what `pulumi up`
would touch. Databases must only lose ``replicateSourceDb`` (an in-place promotion), keep every
replacement-triggering input, and stay protected.
"""
from dataclasses import replace

from scripts.preview.runtime import run_stack
from pulumi.runtime import rpc
from stack_values import config, example_values, with_databases

INSTANCE = "aws:rds/instance:Instance"
RECORD = "aws:route53/record:Record"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
# Inputs whose change makes RDS replace the instance (or that name it): a flip must never touch them.
REPLACING_INPUTS = ("identifier", "kmsKeyId", "storageEncrypted", "dbSubnetGroupName", "port", "instanceClass")


def diff(before, after):
    """URN -> set of changed input keys (plus "<region>" when the provider moved)."""
    changed = {}
    for urn in before.resources.keys() & after.resources.keys():
        a, b = before.resources[urn], after.resources[urn]
        keys = {k for k in a.inputs.keys() | b.inputs.keys() if a.inputs.get(k) != b.inputs.get(k)}
        if a.region != b.region:
            keys.add("<region>")
        if keys:
            changed[urn] = keys
    return changed


def test_flip_changes_exactly_standby_dns_and_alarms(example, failed_over):
    changed = diff(example, failed_over)
    by_type = {}
    for urn, keys in changed.items():
        by_type.setdefault(example.resources[urn].type, {})[example.resources[urn].name] = keys
    assert by_type == {
        INSTANCE: {"standby-orders-instance": {"replicateSourceDb"}},
        RECORD: {"dns-orders-primary": {"failoverRoutingPolicies"}, "dns-orders-dr": {"failoverRoutingPolicies"}},
        ALARM: {f"alarms-orders-backup-age-{t}": {"<region>", "alarmActions", "okActions"} for t in ("hourly", "daily", "weekly", "monthly")},
    }
    removed = {example.resources[u].name for u in example.resources.keys() - failed_over.resources.keys()}
    added = {failed_over.resources[u].name for u in failed_over.resources.keys() - example.resources.keys()}
    assert (removed, added) == ({"alarms-orders-replica-lag"}, set())


def test_flip_promotes_in_place_and_never_replaces_or_deletes_a_database(example, failed_over):
    for urn, before in example.resources.items():
        if before.type != INSTANCE:
            continue
        after = failed_over.resources[urn]
        assert "replicateSourceDb" in before.inputs and "replicateSourceDb" not in after.inputs, urn
        for key in REPLACING_INPUTS:
            assert before.inputs[key] == after.inputs[key], f"{urn}: {key}"
        assert before.region == after.region == "us-west-2", urn
        assert before.protect and after.protect and before.retain_on_delete and after.retain_on_delete, urn
        # After failover nothing is ignored: the program now states the promoted truth.
        assert after.ignore_changes == [], urn
    backups = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"
    assert [r.inputs for r in example.of_type(backups)] == [r.inputs for r in failed_over.of_type(backups)]


def test_dns_after_flip_is_what_an_emergency_cutover_leaves(example, failed_over):
    """`pilotlight cutover` swaps only the failover roles; the flagged program must declare the same."""
    for urn, before in example.resources.items():
        if before.type != RECORD:
            continue
        after = failed_over.resources[urn]
        cutover = dict(before.inputs)
        role = before.inputs["failoverRoutingPolicies"][0]["type"]
        cutover["failoverRoutingPolicies"] = [{"type": "SECONDARY" if role == "PRIMARY" else "PRIMARY"}]
        assert after.inputs == cutover, urn


def test_flipping_back_reverses_dns_and_alarms_but_never_demotes_the_promoted_standby(example, failed_over):
    back = run_stack(config(active="primary"))
    assert diff(failed_over, back) == diff(example, failed_over)
    assert diff(example, back) == {}
    for db in back.of_type(INSTANCE):
        # The input asks for a replica again, but the engine ignores it: RDS cannot demote an
        # instance, so re-seeding after a failback is a deliberate replace (docs/program.md).
        assert db.ignore_changes == ["replicateSourceDb"] and db.protect, db.urn


def test_password_from_secret_config_only_applies_to_a_promoted_standby():
    cfg = replace(config(active="dr"), db_password="from-secret-config")
    run = run_stack(cfg)
    (db,) = run.of_type(INSTANCE)
    # Registered as a Pulumi secret (encrypted in state), never as plain text.
    assert db.inputs["password"] == {rpc._special_sig_key: rpc._special_secret_sig, "value": "from-secret-config"}
    assert "from-secret-config" not in repr(run.document)
    (replica,) = run_stack(replace(config(), db_password="from-secret-config")).of_type(INSTANCE)
    assert "password" not in replica.inputs


def test_flip_with_many_databases_touches_each_standby_once():
    before = run_stack(config(with_databases(example_values(), 5)))
    after = run_stack(config(with_databases(example_values(), 5), active="dr"))
    changed = diff(before, after)
    instances = [u for u in changed if before.resources[u].type == INSTANCE]
    assert len(instances) == 5 and all(changed[u] == {"replicateSourceDb"} for u in instances)
