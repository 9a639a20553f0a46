"""Objectives as code: can the declared infrastructure meet the declared RTO/RPO?

Checked at preview, before anything is created, from config alone (pure, no pulumi). Each rule
is a lower bound the infrastructure imposes; an objective below it can never be met, however
well the drill goes. Rules (docs/program.md explains each):

- data-corruption, accidental-deletion: corruption and deletes replicate to the standby within
  seconds, so recovery comes from before the damage: a point-in-time restore from the RDS
  automated backups the stack replicates to the DR region (every standby has it), whose latest
  restorable time is typically within the last five minutes. RPO >= 5 min (the PITR granularity).
- ransomware: recovery comes from the vault (locked backups an attacker cannot delete; PITR
  backups live with the compromised account's instances). RPO >= the finest backup tier's
  interval (an hourly tier loses up to an hour).
- ransomware: the recovery point must still be locked. RPO <= Object Lock retention, else the
  backup you need may already have been deleted by the attacker (or expired).
- regional-outage, database-loss: RTO >= health-check detection (interval x failure threshold)
  + DNS TTL + a replica promotion budget. RPO >= 5 minutes: the replica is asynchronous, and an
  idle RDS PostgreSQL source makes ``ReplicaLag`` report up to five minutes, so the lag alarm
  (set at the RPO) cannot be set lower without firing on every quiet period.
- every objective: RTO > 0.
"""
from __future__ import annotations

from stacks.config import NAMESPACE, SCENARIO_KEYS, ConfigError, StackConfig
from stacks.vocabulary import BACKUP_SCENARIOS, FAILOVER_SCENARIOS, IDLE_REPLICA_LAG_SECONDS, PITR_SCENARIOS

# RDS promotes a cross-region replica in "a few minutes"; budget 5 so the check stays honest.
PROMOTION_SECONDS = 300
REPLICA_LAG_FLOOR_SECONDS = IDLE_REPLICA_LAG_SECONDS
# RDS "uploads transaction logs for DB instances to Amazon S3 every five minutes"; the latest restorable
# time "is typically within the last 5 minutes" (RDS User Guide, "Restoring a DB instance to a specified
# time", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIT.html; RDS FAQ "typically within
# the last five minutes", https://aws.amazon.com/rds/faqs/).
PITR_GRANULARITY_SECONDS = 300
_CONFIG_KEYS = {scenario: key for key, scenario in SCENARIO_KEYS.items()}


class ObjectiveError(ConfigError):
    """The declared infrastructure cannot meet a declared objective (one line)."""


def human(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _key(scenario: str, what: str) -> str:
    return f"{NAMESPACE}:objectives.{_CONFIG_KEYS[scenario]}.{what}"


def failover_floor_seconds(cfg: StackConfig) -> int:
    """Shortest possible RTO of a DNS failover to the standby."""
    return cfg.dns.health_check.detection_seconds + cfg.dns.ttl + PROMOTION_SECONDS


def problems(cfg: StackConfig) -> list[str]:
    """Every objective the stack cannot meet, one sentence each: key, value, why, fix."""
    out: list[str] = []
    finest = min(cfg.vault.tiers.values(), key=lambda t: t.interval_seconds)
    lock_seconds = cfg.vault.object_lock_days * 86400
    floor = failover_floor_seconds(cfg)
    hc = cfg.dns.health_check
    for scenario, objective in cfg.objectives.items():
        rto, rpo = objective.rto_seconds, objective.rpo_seconds
        if rto <= 0:
            out.append(f"{_key(scenario, 'rto')} = {human(rto)}: no recovery is instantaneous; set a positive RTO")
        if scenario in PITR_SCENARIOS and rpo < PITR_GRANULARITY_SECONDS:
            out.append(
                f"{_key(scenario, 'rpo')} = {human(rpo)}: point-in-time restore reaches back to the latest "
                f"restorable time, typically up to {human(PITR_GRANULARITY_SECONDS)} old (RDS uploads transaction "
                f"logs every 5 minutes); raise the RPO to {human(PITR_GRANULARITY_SECONDS)} or more"
            )
        if scenario in BACKUP_SCENARIOS and scenario not in PITR_SCENARIOS and rpo < finest.interval_seconds:
            out.append(
                f"{_key(scenario, 'rpo')} = {human(rpo)}: the finest backup tier ({finest.name}) runs every "
                f"{human(finest.interval_seconds)}, so up to {human(finest.interval_seconds)} can be lost; "
                f"raise the RPO to {human(finest.interval_seconds)} or more"
            )
        if scenario == "ransomware" and rpo > lock_seconds:
            out.append(
                f"{_key(scenario, 'rpo')} = {human(rpo)}: backups are locked for only "
                f"{cfg.vault.object_lock_days}d, an attacker can delete older ones; raise "
                f"{NAMESPACE}:vault.objectLock.days to {-(-rpo // 86400)} or lower the RPO"
            )
        if scenario in FAILOVER_SCENARIOS:
            if rto < floor:
                out.append(
                    f"{_key(scenario, 'rto')} = {human(rto)}: failover needs at least {human(floor)} "
                    f"(detection {hc.detection_seconds}s + TTL {cfg.dns.ttl}s + "
                    f"promotion {PROMOTION_SECONDS}s); raise the RTO or lower dns.ttl / healthCheck settings"
                )
            if rpo < REPLICA_LAG_FLOOR_SECONDS:
                out.append(
                    f"{_key(scenario, 'rpo')} = {human(rpo)}: the standby replicates asynchronously and an idle "
                    f"RDS PostgreSQL source reports up to {human(REPLICA_LAG_FLOOR_SECONDS)} of ReplicaLag, so lag "
                    f"below that cannot be alarmed on; raise the RPO to {human(REPLICA_LAG_FLOOR_SECONDS)} or more"
                )
    return out


def check(cfg: StackConfig) -> None:
    """Raise ObjectiveError (one line) when any objective cannot be met."""
    found = problems(cfg)
    if found:
        more = f" (and {len(found) - 1} more: {'; '.join(found[1:])})" if len(found) > 1 else ""
        raise ObjectiveError(found[0] + more)
