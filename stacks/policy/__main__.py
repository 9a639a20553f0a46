"""The Pilotlight DR policy pack: `pulumi preview --policy-pack stacks/policy`.

The rules live in ``policies.py`` as plain functions; `pilotlight check` runs the same ones on
the mock runtime's resources, so the pack and `check` never disagree.
"""
from pulumi_policy import EnforcementLevel, PolicyPack

from policies import pack_policies

PolicyPack(
    name="pilotlight-dr",
    description="Disaster-recovery invariants: vault encryption, Object Lock, replication with RTC, "
    "private TLS-only buckets, encrypted deletion-protected standby, failover TTL, objectives.",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=pack_policies(),
)
