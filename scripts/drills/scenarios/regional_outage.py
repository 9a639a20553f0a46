"""regional-outage: the primary region goes away; the service comes back on the DR standby.

Sandbox: the primary PostgreSQL cluster is SIGKILLed (postmaster and backends at once) and the
primary region's AWS endpoint and the Route53 control plane are made unreachable for real
(their proxies refuse connections). Nothing is told about it: the health prober notices the
dead endpoint, the failover records answer the standby (data plane), then ``cutover`` promotes
the standby, tries the record change (which fails: no control plane — a warning, not a
failure) and verifies every authoritative nameserver. A heartbeat writer commits through the
service name all along:

- RTO = failure → first heartbeat committed on the new primary through the DNS name;
- RPO = last heartbeat acknowledged by the old primary → newest of those present on the new
  primary (0 when every acknowledged row survived); lost acknowledged rows are counted too.

Afterwards the service is restored by a real ``failback`` (regions unblocked, a new primary
built from DR, switched back, a new DR replica), so the next drill starts where this one did.

Real stack: a region cannot be switched off from here. The drill fences the primary (the
application sees its writes fail, as in an outage) and runs the planned cutover through the
Route53 control plane. Both then fail back through the RDS API (new primary and standby
instances, docs/drills.md), with a writer that keeps writing to DR directly and overrides the
read-only default: every write it got acknowledged must be on the new primary.
"""
from __future__ import annotations

import time

from scripts.postgres import replication as dbstate
from scripts.failover import dns as dnscheck
from scripts.drills import heartbeat
from scripts.common import PilotlightError
from scripts.failover.cutover import perform_cutover
from scripts.failover.failback import moved_database, perform_failback
from scripts.sandbox import faults
from scripts.drills.scenarios import DrillContext
from scripts.steps import SKIPPED

DETECT_TIMEOUT = 60.0
RECOVER_TIMEOUT = 60.0
BASELINE_ACKS = 10


class StackOutage:
    """On a real stack: fence the primary (no session, no new connection); recovery goes through the control plane."""

    kills_primary = False

    def __init__(self, ctx: DrillContext):
        self.ctx = ctx

    def inject(self) -> str:
        ended = dbstate.fence(self.ctx.contract, self.ctx.db, "primary")
        return f"primary fenced, {ended} session(s) ended"

    def heal(self) -> None:
        """Nothing: the service now runs on DR until the failback."""

    def rollback(self) -> None:
        dbstate.unfence(self.ctx.contract, self.ctx.db, "primary")


def run(ctx: DrillContext) -> None:
    run_failover(ctx, outage_for(ctx, "regional-outage"))


def outage_for(ctx: DrillContext, scenario: str):
    """The failure to inject: the sandbox's real one (a region, or only the primary instance), else the fence."""
    inject = faults.regional_outage if scenario == "regional-outage" else faults.database_loss
    return inject(ctx.contract, ctx.options) or StackOutage(ctx)


def run_failover(ctx: DrillContext, outage) -> None:
    """Lose the primary (``outage``), recover on the promoted standby through DNS, measure, fail back."""
    contract, db, steps = ctx.contract, ctx.db, ctx.steps
    with steps.step("check starting state") as s:
        primary, dr = dbstate.state(contract, db, "primary"), dbstate.state(contract, db, "dr")
        serving = dnscheck.answering_side(contract, db)
        s.note(f"primary {primary.role}, dr {dr.role}, dns -> {serving}")
        if primary.role != "primary" or dr.role != "replica" or serving != "primary":
            raise PilotlightError("the service is not in its normal state (primary serving, dr streaming); "
                                  "run `pilotlight failback --to primary --yes` first")
    with steps.step("create heartbeat table"):
        heartbeat.create_table(contract, db, "primary")
        dbstate.wait_caught_up(contract, db, "dr", "primary", 30)
    beat = heartbeat.Heartbeat(contract, db)
    injected = False
    try:
        with steps.step("heartbeat baseline") as s:
            beat.start()
            if beat.wait_for(lambda a: len(beat.acks) >= BASELINE_ACKS, 30) is None:
                raise PilotlightError(f"no steady heartbeat through {db.dns.record_name}: {beat.last_error}")
            s.note(f"{len(beat.acks)} commits through {db.dns.record_name} on primary")
        with steps.step("inject failure") as s:
            t_fail, wall_fail = time.monotonic(), time.time()
            injected = True
            s.note(outage.inject())
        ctx.measured["failureAt"] = wall_fail
        with steps.step("detect: dns fails over") as s:
            if outage.kills_primary:
                dnscheck.wait_for(contract, db, "dr", DETECT_TIMEOUT)
                ctx.measured["detectionSeconds"] = round(time.monotonic() - t_fail, 3)
                s.note("health check failed; the failover records answer dr (no API call)")
            else:
                s.note("the primary is fenced, not down: the cutover sets the switch", SKIPPED)
        result = perform_cutover(contract, db, "dr", steps.child("cutover: "), outputs=ctx.outputs, dns_timeout=30,
                                 checks=False)
        ctx.check("dns answers dr on every authoritative server",
                  all(dnscheck.side_of(db, t) == "dr" for t in result["dnsAfter"].values()),
                  ", ".join(f"{k} -> {v}" for k, v in result["dnsAfter"].items()))
        ctx.notes.extend(result["warnings"])
        with steps.step("service restored through dns") as s:
            first = beat.wait_for(lambda a: a.side == "dr" and a.mono > t_fail, RECOVER_TIMEOUT)
            if first is None:
                raise PilotlightError(f"no heartbeat committed on dr within {RECOVER_TIMEOUT:.0f} s: {beat.last_error}")
            ctx.measured["rtoSeconds"] = round(first.mono - t_fail, 3)
            s.note(f"first commit on dr {ctx.measured['rtoSeconds']:.3f} s after the failure")
        with steps.step("measure data loss") as s:
            beat.wait_for(lambda a: a.side == "dr" and a.mono > first.mono + 0.3, 5)
            beat.stop()
            _measure_rpo(ctx, beat, t_fail)
            s.note(f"RPO {ctx.measured['rpoSeconds']:.3f} s, {ctx.measured['lostAcknowledgedRows']} "
                   f"acknowledged row(s) lost, heartbeat gap {ctx.measured['heartbeatGapSeconds']:.3f} s")
    finally:
        beat.stop()
        ctx.measured["heartbeat"] = beat.summary(origin=ctx.steps.t0)
        if injected:
            _restore(ctx, outage)
        else:
            heartbeat.drop_table(contract, db, "primary")


def _measure_rpo(ctx: DrillContext, beat: heartbeat.Heartbeat, t_fail: float) -> None:
    old = [a for a in beat.acks if a.side == "primary" and a.mono <= t_fail]
    new = [a for a in beat.acks if a.side == "dr"]
    present = heartbeat.present_ids(ctx.contract, ctx.db, "dr", [a.id for a in old])
    lost = [a for a in old if a.id not in present]
    survived = [a for a in old if a.id in present]
    last_old = old[-1]
    if not lost:
        rpo = 0.0
    elif survived:
        rpo = last_old.at - survived[-1].at
    else:
        rpo = last_old.at - old[0].at
    gap = new[0].at - last_old.at
    ctx.measured.update(rpoSeconds=round(max(0.0, rpo), 3), lostAcknowledgedRows=len(lost),
                        acknowledgedBeforeFailure=len(old), heartbeatGapSeconds=round(gap, 3),
                        failedWriteAttempts=beat.failures)
    ctx.check("heartbeat gap observed", gap > 0 and beat.failures > 0,
              f"{gap:.3f} s without a commit, {beat.failures} failed attempt(s)")
    ctx.check("every acknowledged row before the failure is accounted for", len(present) + len(lost) == len(old),
              f"{len(present)} present on dr, {len(lost)} lost")


def _restore(ctx: DrillContext, outage) -> None:
    """Leave the service as it was: heal, fail back (with a stale writer on DR the fence must stop), clean up."""
    contract, db, steps = ctx.contract, ctx.db, ctx.steps
    with steps.step("heal: endpoints reachable again"):
        outage.heal()
    dr = dbstate.state(contract, db, "dr")
    if dr.role != "primary":
        with steps.step("rollback: bring the primary back"):
            outage.rollback()
            dnscheck.wait_for(contract, db, "primary", 30)
        with steps.step("cleanup: drop heartbeat table"):
            heartbeat.drop_table(contract, db, "primary")
        return
    stale = heartbeat.StaleWriter(contract, db, side="dr").start()
    try:
        result = perform_failback(contract, db, steps.child("failback: "), outputs=ctx.outputs, dns_timeout=30)
    finally:
        stale.stop()
    db = moved_database(db, result)
    lost = stale.lost_after(contract, db, "primary")
    ctx.measured.update(staleWriterAcknowledged=len(stale.acks), staleWriterLost=len(lost),
                        staleWriterFailedAttempts=stale.failures)
    ctx.check("no acknowledged write lost to a client overriding the read-only default",
              not lost and result["switchover"].get("fenceHeld", True),
              f"{len(stale.acks)} acknowledged on dr by a PGOPTIONS writer, {len(lost)} missing on the new primary")
    with steps.step("cleanup: drop heartbeat table"):
        heartbeat.drop_table(contract, db, "primary")
        dbstate.wait_caught_up(contract, db, "dr", "primary", 30)
    ctx.notes.append(f"restored by failback: {db.primary.identifier} serves, {db.standby.identifier} streams from it")
