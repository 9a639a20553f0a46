"""Objectives as code: the preview fails with one line when the declared stack cannot meet an objective."""
import pytest
from scripts.preview.runtime import run_stack
from stack_values import config, example_values

from stacks import objectives
from stacks.objectives import ObjectiveError


def with_objective(key, **values):
    v = example_values()
    v["objectives"][key] = v["objectives"][key] | values
    return v


def test_example_objectives_are_met():
    assert objectives.problems(config()) == []
    # DATABASE signal: 3 one-minute alarm periods, then TTL and the promotion budget.
    assert objectives.failover_floor_seconds(config()) == 60 * 3 + 30 + 300


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            with_objective("dataCorruption", rpo="1m"),
            r"^pilotlight:objectives\.dataCorruption\.rpo = 1m: point-in-time restore reaches back to the latest "
            r"restorable time, typically up to 5m old \(RDS uploads transaction logs every 5 minutes\); "
            r"raise the RPO to 5m or more$",
        ),
        (with_objective("accidentalDeletion", rpo="2m"), r"^pilotlight:objectives\.accidentalDeletion\.rpo = 2m: point-in-time"),
        (
            with_objective("ransomware", rpo="30m"),
            r"^pilotlight:objectives\.ransomware\.rpo = 30m: the finest backup tier \(hourly\) runs every 1h, "
            r"so up to 1h can be lost; raise the RPO to 1h or more$",
        ),
        (with_objective("ransomware", rpo="30d"), r"^pilotlight:objectives\.ransomware\.rpo = 30d: backups are locked for only 7d.*raise pilotlight:vault\.objectLock\.days to 30"),
        (
            with_objective("regionalOutage", rto="2m"),
            r"^pilotlight:objectives\.regionalOutage\.rto = 2m: failover needs at least 510s "
            r"\(detection 180s \+ TTL 30s \+ promotion 300s\)",
        ),
        (
            with_objective("regionalOutage", rpo="1m"),
            r"^pilotlight:objectives\.regionalOutage\.rpo = 1m: .*an idle RDS PostgreSQL source reports up to 5m "
            r"of ReplicaLag.*raise the RPO to 5m or more$",
        ),
        (with_objective("databaseLoss", rpo="0s"), r"^pilotlight:objectives\.databaseLoss\.rpo = 0s: the standby replicates asynchronously"),
        (with_objective("accidentalDeletion", rto="0s"), r"^pilotlight:objectives\.accidentalDeletion\.rto = 0s: no recovery is instantaneous"),
    ],
)
def test_unmeetable_objectives_are_rejected_with_the_right_message(values, message):
    with pytest.raises(ObjectiveError, match=message) as info:
        objectives.check(config(values))
    assert "\n" not in str(info.value)


def test_longer_ttl_and_slower_health_checks_raise_the_floor():
    values = example_values()
    values["dns"]["ttl"] = 300
    values["dns"]["healthCheck"] = {"type": "HTTPS", "fqdn": "api.example.com", "intervalSeconds": 30, "failureThreshold": 10}
    values["objectives"]["regionalOutage"]["rto"] = "14m"
    with pytest.raises(ObjectiveError, match=r"regionalOutage\.rto = 14m: failover needs at least 15m"):
        objectives.check(config(values))


def test_several_problems_stay_on_one_line():
    values = with_objective("dataCorruption", rpo="1m")
    values["objectives"]["ransomware"]["rpo"] = "10m"
    with pytest.raises(ObjectiveError, match=r"dataCorruption.*\(and 1 more: .*ransomware") as info:
        objectives.check(config(values))
    assert "\n" not in str(info.value)


def test_finer_tier_meets_a_tighter_objective():
    """A 1-hour RPO is met by hourly backups; the check follows the tier intervals, not a constant."""
    assert objectives.problems(config(with_objective("ransomware", rpo="1h"))) == []


def test_point_in_time_restore_meets_a_15_minute_data_corruption_rpo_the_hourly_tier_could_not():
    """The reference runbooks' 15-minute data-corruption RPO: met by PITR (5 min granularity), not by dumps."""
    values = with_objective("dataCorruption", rpo="15m")
    values["objectives"]["accidentalDeletion"]["rpo"] = "5m"
    assert objectives.problems(config(values)) == []


def test_preview_fails_before_any_resource_is_registered():
    with pytest.raises(ObjectiveError):
        run_stack(config(with_objective("dataCorruption", rpo="1m")))
