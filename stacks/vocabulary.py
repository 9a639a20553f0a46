"""The one vocabulary: sides, tiers, scenarios, metric names, the replication window, the contract version.

The program declares and exports with these words and the tools read the outputs contract with
them, so both import this module, each word defined here once. It lives in ``stacks/`` because the
program must never depend on ``scripts/`` (the tools may read the program's modules, as
``pilotlight check`` does), and it imports nothing, so a tool importing it loads no Pulumi.
Components import nothing from ``stacks/``: they take these values from ``stacks/dr.py`` as plain
arguments. The policy pack (``stacks/policy/policies.py``) runs on its own under
``pulumi preview --policy-pack stacks/policy``, where this package is not importable; it keeps
its own copy, and ``tests/test_vocabulary.py`` asserts every copy still equals this module.
"""

CONTRACT_VERSION = 1
"""The outputs contract's ``contractVersion`` (docs/outputs-contract.md)."""

SIDES = ("primary", "dr")
TIERS = ("hourly", "daily", "weekly", "monthly")

SCENARIOS = ("regional-outage", "database-loss", "data-corruption", "ransomware", "accidental-deletion")
FAILOVER_SCENARIOS = ("regional-outage", "database-loss")
BACKUP_SCENARIOS = ("data-corruption", "ransomware", "accidental-deletion")
"""Scenarios recovered from the vault, in the order of :data:`SCENARIOS`."""
PITR_SCENARIOS = ("data-corruption", "accidental-deletion")
"""Backup scenarios a point-in-time restore (``restore --to-time``) recovers to the second; ransomware
stays on the vault (Object Lock: PITR backups live with the compromised account's instances)."""

METRIC_NAMESPACE = "Pilotlight"
BACKUP_AGE_METRIC = "NewestBackupAgeSeconds"

IDLE_REPLICA_LAG_SECONDS = 300
"""What ReplicaLag reports for an idle RDS PostgreSQL source: the floor of the lag alarm and of a failover RPO."""

RTC_MINUTES = 15
"""S3 Replication Time Control: replication within 15 minutes is what RTC promises and alarms on."""
