"""What runs when: the job plan, shared by the program (components/jobs.py) and the sandbox.

Pure: one :class:`JobSpec` per database and tier (a backup in the active side's region) and
one per database for verification (always in the DR region, restoring into a scratch server
on the task's own loopback). The contract's ``jobs`` section is this plan plus, on AWS, the
task definition, role and cluster ARNs.
"""
from __future__ import annotations

from components.jobrules import JobSpec
from stacks.config import StackConfig
from stacks.jobsconfig import VERIFY

__all__ = ["JobSpec", "job_specs"]

SCRATCH_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


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
        # The DR copy with the DR key (works while the primary region is down); the test restore goes
        # into the scratch sidecar on the task's own loopback, never production; the record is locked
        # into the DR vault under evidence/ for auditors and `pilotlight status`.
        specs.append(JobSpec(
            name, "verify", db.name, None, "dr", s.cron, s.timezone,
            ("verify", "--database", db.name, "--from-region", "dr", "--test-restore", "--server", SCRATCH_DSN,
             "--evidence", "--json"),
            {**env, "PILOTLIGHT_JOB": name},
        ))
    return specs
