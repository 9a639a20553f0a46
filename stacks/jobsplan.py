"""What runs when: the job plan, shared by the program (components/jobs.py) and the sandbox.

Pure: one :class:`JobSpec` per database and tier (a backup in the active side's region) and
one per database for verification (always in the DR region, restoring into a scratch server
on the task's own loopback). The contract's ``jobs`` section is this plan plus, on AWS, the
task definition, role and cluster ARNs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from stacks.config import StackConfig
from stacks.jobsconfig import VERIFY

SCRATCH_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@dataclass(frozen=True)
class JobSpec:
    name: str
    kind: str
    """``backup`` or ``verify``."""
    database: str
    tier: str | None
    side: str
    """Whose region runs it: the active side for backups, ``dr`` for verification."""
    cron: str
    timezone: str
    command: tuple[str, ...]
    environment: Mapping[str, str] = field(default_factory=dict)

    def contract(self, region: str, **aws: Any) -> dict[str, Any]:
        """This job as the contract lists it (``aws``: taskDefinition, roleArn, cluster on a real stack)."""
        return {
            "name": self.name, "kind": self.kind, "database": self.database, "tier": self.tier,
            "side": self.side, "region": region, "schedule": self.cron, "timezone": self.timezone,
            "command": list(self.command), "environment": dict(self.environment), **aws,
        }


def job_specs(cfg: StackConfig, name_prefix: str) -> list[JobSpec]:
    jobs = cfg.jobs
    env = {"PILOTLIGHT_PG_BIN": f"/usr/lib/postgresql/{cfg.pg_major}/bin"}
    specs = []
    for db in cfg.databases:
        for tier in cfg.vault.tiers:
            s = jobs.schedules[tier]
            name = f"{name_prefix}-{db.name}-{tier}"
            specs.append(JobSpec(
                name, "backup", db.name, tier, cfg.active, s.cron, s.timezone,
                ("backup", "--database", db.name, "--tier", tier, "--json"), {**env, "PILOTLIGHT_JOB": name},
            ))
        s = jobs.schedules[VERIFY]
        name = f"{name_prefix}-{db.name}-{VERIFY}"
        # The test restore goes into the scratch sidecar on the task's own loopback, never production.
        specs.append(JobSpec(
            name, "verify", db.name, None, "dr", s.cron, s.timezone,
            ("verify", "--database", db.name, "--test-restore", "--server", SCRATCH_DSN, "--json"),
            {**env, "PILOTLIGHT_JOB": name},
        ))
    return specs
