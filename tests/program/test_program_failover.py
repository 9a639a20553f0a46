"""Failover and failback as transitions: primary -> cutover -> dr -> failback -> primary (and once more).

Each step is a program evaluation; between two, the tool changed AWS and ``pulumi up --refresh``
read it back (``transitions.refreshed``). The AWS rules see every transition; the tests assert
what the engine would do: no database replaced or created twice, no failover record changing
role, no credential anywhere, and exactly which resources are created, adopted and dropped.
"""
from __future__ import annotations

import pytest
from scripts.preview.runtime import run_stack
from stack_values import config, example_values, with_databases
from transitions import BACKUPS, CHECK, DROP, INSTANCE, RECORD, names, plan, refreshed

from scripts.preview import awsrules
from stacks import naming

PRIMARY_HOST = "orders-prod.c9akciq32.us-east-1.rds.amazonaws.com"


def values_at(generation: int) -> dict:
    """The config after ``generation`` failbacks (what `pilotlight failback` prints, applied)."""
    values = example_values()
    if generation:
        ident = f"pilotlight-dr-orders-primary-g{generation}"
        values["databases"][0] |= {
            "generation": generation,
            "primaryArn": f"arn:aws:rds:us-east-1:123456789012:db:{ident}",
            "primaryHost": f"{ident}.mock.us-east-1.rds.amazonaws.com",
        }
    return values


def standby(generation: int) -> str:
    return naming.standby_logical_name(config(values_at(generation)).databases[0])


def after_cutover(run, generation: int) -> list[awsrules.Resource]:
    """What `pilotlight cutover --to dr` leaves: standby promoted with the retention, switch forced."""
    return refreshed(run, {
        f"{standby(generation)}-instance": {"replicateSourceDb": DROP, "backupRetentionPeriod": 7},
        "dns-orders-switch": {"childHealthThreshold": 2},
    })


def after_failback(run, generation: int, new_standby_host: str) -> list[awsrules.Resource]:
    """What `pilotlight failback` leaves: PRIMARY -> new primary, signal alarm re-pointed, SECONDARY -> new
    standby, switch back."""
    ident = f"pilotlight-dr-orders-primary-g{generation + 1}"
    return refreshed(run, {
        "dns-orders-primary": {"records": [f"{ident}.mock.us-east-1.rds.amazonaws.com"]},
        "dns-orders-primary-down": {"dimensions": {"DBInstanceIdentifier": ident}},
        "dns-orders-dr": {"records": [new_standby_host]},
        "dns-orders-switch": {"childHealthThreshold": 1},
    })


def assert_invariants(steps) -> None:
    """Every transition: no AWS rule broken, no database replaced, no record changes role, no password."""
    for before, after in steps:
        assert awsrules.transition_problems(before, after.views) == []
        ops = plan(before, after)
        assert not names(ops.get("replace", []), INSTANCE) and not names(ops.get("create", []), INSTANCE)
        for change in ops.get("update", []) + ops.get("replace", []):
            if change.after.type == RECORD:
                assert "failoverRoutingPolicies" not in change.keys and "setIdentifier" not in change.keys, change
        for deleted in ops.get("delete", []):
            if deleted.before.type == INSTANCE:
                assert deleted.before.retain_on_delete, deleted.before.urn
        for r in after.views:
            assert not {"password", "masterPassword", "manageMasterUserPassword"} & set(r.inputs), r.urn


@pytest.fixture(scope="module")
def cycle():
    """primary(g0) -> dr(g0) -> primary(g1) -> dr(g1) -> primary(g2), with the tool's steps in between."""
    runs = {(g, side): run_stack(config(values_at(g), active=side)) for g in (0, 1, 2) for side in ("primary", "dr")
            if (g, side) != (2, "dr")}
    steps = []
    for g in (0, 1):
        steps.append((after_cutover(runs[(g, "primary")], g), runs[(g, "dr")]))
        new_standby = runs[(g + 1, "primary")].document["databases"][0]["standby"]["host"]
        steps.append((after_failback(runs[(g, "dr")], g, new_standby), runs[(g + 1, "primary")]))
    return runs, steps


def test_every_step_keeps_databases_records_and_credentials(cycle):
    _, steps = cycle
    assert_invariants(steps)


def test_recorded_cutover_changes_no_database_input_but_multi_az_and_no_dns(cycle):
    """Items 2, 3, 13, 15: after the tool, `pulumi up --refresh` only adds Multi-AZ; DNS shows no change."""
    runs, steps = cycle
    ops = plan(*steps[0])
    (instance,) = [c for c in ops["update"] if c.after.type == INSTANCE]
    assert instance.keys == {"multiAz"} and instance.after.inputs["multiAz"] is True
    assert not [c for c in ops["update"] if c.after.type in (RECORD, CHECK)]
    assert names(ops["delete"], BACKUPS) == {"standby-orders-backups"}
    assert names(ops["create"], BACKUPS) == {"standby-orders-backups-to-primary"}


def test_promoted_standby_backups_replicate_into_the_primary_region(cycle):
    """Item 5: the promoted instance's backups follow it; replacements delete first."""
    runs, _ = cycle
    (rep,) = runs[(0, "dr")].of_type(BACKUPS)
    (db,) = runs[(0, "dr")].of_type(INSTANCE)
    assert rep.region == "us-east-1" and rep.inputs["sourceDbInstanceArn"] == runs[(0, "dr")].document["databases"][0]["standby"]["arn"]
    assert rep.inputs["kmsKeyId"] == runs[(0, "dr")].document["keys"]["primary"]["arn"]
    assert db.inputs["backupRetentionPeriod"] == rep.inputs["retentionPeriod"] == 7
    for run in runs.values():
        for view in run.views:
            if view.type == BACKUPS:
                assert view.delete_before_replace, view.urn


def test_failback_adopts_the_tools_new_standby_and_drops_the_old_without_deleting_it(cycle):
    """Item 4: the new generation is imported (created by `pilotlight failback`), the retired one retained."""
    runs, steps = cycle
    for g, (before, after) in ((0, steps[1]), (1, steps[3])):
        ops = plan(before, after)
        (adopted,) = [c.after for c in ops["import"] if c.after.type == INSTANCE]
        assert adopted.name == f"{standby(g + 1)}-instance"
        assert adopted.import_id == f"pilotlight-dr-orders-standby-g{g + 1}"
        assert adopted.inputs["replicateSourceDb"] == f"arn:aws:rds:us-east-1:123456789012:db:pilotlight-dr-orders-primary-g{g + 1}"
        (retired,) = [c.before for c in ops["delete"] if c.before.type == INSTANCE]
        assert retired.name == f"{standby(g)}-instance" and retired.retain_on_delete and retired.protect
        assert not [c for c in ops.get("update", []) if c.after.type == RECORD]
        # Triggers live only in Pulumi's state: the re-pointed alarm is re-synced once more, harmlessly.
        assert {c.after.name: c.keys for c in ops["update"] if c.after.type == CHECK} == {"dns-orders-signal": {"triggers"}}
        doc = runs[(g, "dr")].document["databases"][0]["failback"]
        assert (doc["primaryIdentifier"], doc["standbyIdentifier"]) == (
            f"pilotlight-dr-orders-primary-g{g + 1}", f"pilotlight-dr-orders-standby-g{g + 1}")
        assert doc["standbyUrn"] == retired.urn


def test_a_flag_only_promotion_is_refused_as_aws_would(cycle):
    """Item 1/3: without the tool, the provider modifies the replica's retention before promoting."""
    runs, _ = cycle
    problems = awsrules.transition_problems(runs[(0, "primary")].views, runs[(0, "dr")].views)
    assert any("rds-modify-before-promote" in p for p in problems), problems


def test_the_old_failback_by_replace_is_refused():
    """Item 4: `pulumi up --replace <standby>` with replicate_source_db ignored creates a bare instance."""
    before = after_cutover(run_stack(config()), 0)
    back = run_stack(config())
    after = [awsrules.Resource(**{**r.__dict__, "replace": r.type == INSTANCE}) for r in back.views]
    problems = awsrules.transition_problems(before, after)
    assert any("rds-create-needs-a-source-or-engine" in p and "engine, allocatedStorage, username" in p
               for p in problems), problems


def test_switch_is_the_only_dns_input_the_flag_changes(cycle):
    runs, _ = cycle
    before, after = runs[(0, "primary")], runs[(0, "dr")]
    changed = {c.after.name: c.keys for c in awsrules.changes(before.views, after.views)
               if c.op == "update" and c.after.type in (RECORD, CHECK)}
    assert changed == {"dns-orders-switch": {"childHealthThreshold"}}


def test_flip_with_many_databases_touches_each_standby_once():
    before = run_stack(config(with_databases(example_values(), 5)))
    after = run_stack(config(with_databases(example_values(), 5), active="dr"))
    promoted = [c for c in awsrules.changes(before.views, after.views) if c.after and c.after.type == INSTANCE]
    assert len(promoted) == 5 and all(c.op == "update" and "replicateSourceDb" in c.keys for c in promoted)
