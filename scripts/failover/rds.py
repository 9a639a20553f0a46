"""Promote and re-seed database sides: the one place the sandbox and AWS differ.

Everything else in cutover, failback and drills speaks SQL (scripts.postgres.replication) and Route53, the
same on both. Promotion and re-seeding are infrastructure operations: on AWS they are RDS API
calls (``promote_read_replica`` and its waiter); in the sandbox they are ``pg_ctl promote`` and
``pg_basebackup`` on the local clusters, through the sandbox's control module. Which one is
chosen by ``contract.sandbox is None`` alone.
"""
from __future__ import annotations

from typing import Protocol

from scripts import aws
from scripts.common import Exit, PilotlightError
from scripts.contract import Contract, Database
from scripts.postgres.replication import wait_writable

PROMOTE_TIMEOUT = 60.0


class Platform(Protocol):
    def promote(self, db: Database, side: str) -> None:
        """Make ``side`` a writable primary; returns once it accepts writes."""

    def reseed(self, db: Database, side: str, source: str) -> None:
        """Rebuild ``side`` as a streaming replica of ``source`` (its old data is discarded)."""


class SandboxPlatform:
    """Local PostgreSQL clusters, driven by scripts.sandbox.control."""

    def __init__(self, contract: Contract):
        from scripts.sandbox import control  # only the sandbox needs it

        self.contract = contract
        self.control = control
        self.state = control.load(contract.sandbox.state_dir)

    def promote(self, db: Database, side: str) -> None:
        self.control.promote(self.state, side)
        wait_writable(self.contract, db, side, PROMOTE_TIMEOUT)

    def reseed(self, db: Database, side: str, source: str) -> None:
        self.control.reseed_as_replica(self.state, side, source)


class RdsPlatform:
    """RDS: the standby is a cross-region read replica of the production instance."""

    def __init__(self, contract: Contract):
        self.contract = contract

    def _instance(self, db: Database, side: str) -> str:
        return db.primary.identifier if side == "primary" else db.standby.identifier

    def promote(self, db: Database, side: str) -> None:
        rds = aws.client(self.contract, "rds", side)
        ident = self._instance(db, side)
        rds.promote_read_replica(DBInstanceIdentifier=ident)
        rds.get_waiter("db_instance_available").wait(
            DBInstanceIdentifier=ident, WaiterConfig={"Delay": 15, "MaxAttempts": 80}
        )
        wait_writable(self.contract, db, side, PROMOTE_TIMEOUT)

    def reseed(self, db: Database, side: str, source: str) -> None:
        raise PilotlightError(
            "re-seeding an RDS instance is a stack change: create a cross-region read replica of the "
            f"{source} instance in the {side} region (see docs/drills.md, 'Failback on AWS')",
            Exit.REFUSED,
        )


def platform_for(contract: Contract) -> Platform:
    return RdsPlatform(contract) if contract.sandbox is None else SandboxPlatform(contract)
