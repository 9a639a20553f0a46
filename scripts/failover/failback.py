"""`pilotlight failback --to primary`: move the service back once the primary region is usable again.

RDS cannot demote a promoted instance, and the old primary's data is stale (and may have
diverged: it acknowledged writes the standby never received), so it is never reused. The
stack manages the standby by generation (docs/drills.md, "Failback"); from generation g, with
the standby S_g promoted and serving, every step is an RDS or Route 53 API call, the same on
AWS and in the sandbox:

1. pin the switch to DR (a cutover with the control plane down could not), then divergence: if
   the old primary answers, compare what it has with where S_g was promoted
   (the promotion record cutover left on S_g); refuse when it took writes S_g never got,
   naming them, unless ``--discard-diverged``, which first backs the old primary up into the vault;
2. create the new primary ``failback.primaryIdentifier`` in the primary region as a cross-region
   read replica of S_g (settings copied from the old primary), wait until it has caught up;
3. re-point the PRIMARY record (and the signal health check) at it — no traffic yet: the switch
   still forces DR;
4. switch over: fence S_g, wait, promote the new primary, set the switch to the primary threshold,
   verify DNS (the same code as a planned ``cutover``);
5. create the new standby ``failback.standbyIdentifier`` in the DR region as a replica of the new
   primary, re-point the SECONDARY record at it, fence the retired instances (old primary, S_g:
   kept, unwritable);
6. print the ``pulumi config set …`` / ``pulumi up --refresh`` that bring the stack into agreement
   (and record the new topology in the outputs file the contract came from, if any).
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scripts.postgres import replication as dbstate
from scripts.failover import dns as dnscheck
from scripts.failover import records as dnsrecords
from scripts.vault.backup import perform_backup
from scripts.common import Exit, PilotlightError, Refused
from scripts.contract import Contract, Database, Endpoint
from scripts.failover.cutover import DNS_TIMEOUT, perform_cutover
from scripts.failover.divergence import Divergence, check_divergence
from scripts.failover.rds import platform_for
from scripts.steps import SKIPPED, WARNING, Steps

CATCH_UP_TIMEOUT = 600.0
DISCARD_TIER = "daily"


def perform_failback(contract: Contract, db: Database, steps: Steps, *, dry_run: bool = False,
                     outputs: Path | None = None, dns_timeout: float = DNS_TIMEOUT,
                     discard_diverged: bool = False) -> dict[str, Any]:
    """Return the service to a new primary-region instance and DR to a new replica of it. Raises on failure."""
    result: dict[str, Any] = {"to": "primary", "database": db.name, "dryRun": dry_run, "already": False}
    with steps.step("check databases") as s:
        primary, dr = dbstate.state(contract, db, "primary"), dbstate.state(contract, db, "dr")
        serving = dnscheck.answering_side(contract, db)
        s.note(f"primary {primary.role}, dr {dr.role}, dns -> {serving}")
    if contract.active == "primary" and primary.role == "primary" and dr.role == "replica" and serving == "primary":
        result["already"] = True
        return result
    if not (dr.reachable and not dr.in_recovery):
        raise Refused(f"nothing to fail back from: the dr database is {dr.role}, not a serving primary")
    if db.failback is None:
        raise Refused(f"the stack exports no failback identifiers for {db.name} (databases[].failback); "
                      "upgrade the program and run `pulumi up`")
    fb = db.failback
    with steps.step("check divergence") as s:
        divergence = check_divergence(contract, db)
        result["divergence"] = divergence.as_dict()
        s.note(divergence.summary, WARNING if divergence.diverged else None)
    if divergence.diverged and not discard_diverged:
        raise Refused(f"the old primary diverged: {divergence.summary}; failback would discard it. Re-run with "
                      "--discard-diverged to back it up into the vault first and go on")
    if dry_run:
        result["plan"] = _plan(contract, db, divergence)
        return result
    platform = platform_for(contract)
    if divergence.diverged:
        with steps.step("back up the diverged old primary") as s:
            manifest = perform_backup(contract, DISCARD_TIER, source_dsn=divergence.dsn, db=db.name)
            result["discardedBackup"] = manifest.id
            s.note(f"backup {manifest.id} in the {DISCARD_TIER} tier holds what the old primary had")
    with steps.step("pin the switch to dr") as s:
        # If the cutover ran with the control plane down, the switch still follows the signal check:
        # once that check probes the new (read-only) primary, Route 53 would send traffic to it early.
        _control_plane(lambda: s.note(
            "already forces dr" if dnsrecords.switch_side(contract, db) == "dr"
            else f"UpdateHealthCheck HealthThreshold={dnsrecords.set_switch(contract, db, 'dr')}"))
    old = platform.describe("primary", db.primary.identifier)
    retired = platform.describe("dr", db.standby.identifier)
    with steps.step(f"create {fb.primary_identifier}") as s:
        made = platform.create_replica("primary", fb.primary_identifier, db.standby.arn, "dr", old or retired)
        new_primary = _endpoint(made)
        s.note(f"cross-region replica of {db.standby.identifier}, {made['Endpoint']['Address']}")
    moved = dataclasses.replace(db, primary=new_primary, dns=dataclasses.replace(
        db.dns, primary_target=new_primary.host))
    with steps.step("wait for the new primary to catch up") as s:
        s.note(f"caught up after {dbstate.wait_caught_up(contract, moved, 'primary', 'dr', CATCH_UP_TIMEOUT):.2f} s")
    with steps.step("re-point the PRIMARY record") as s:
        _control_plane(lambda: s.note(
            f"{dnsrecords.upsert_target(contract, db, 'primary', new_primary.host)}; "
            f"{_repoint_check(contract, db, new_primary)}; the switch still sends traffic to dr"))
    result["switchover"] = perform_cutover(contract, moved, "primary", steps.child("switch back: "),
                                           outputs=outputs, dns_timeout=dns_timeout, checks=False)
    with steps.step(f"create {fb.standby_identifier}") as s:
        made = platform.create_replica("dr", fb.standby_identifier, new_primary.arn, "primary", retired or made)
        new_standby = _endpoint(made)
        s.note(f"cross-region replica of {fb.primary_identifier}, {made['Endpoint']['Address']}")
    with steps.step("re-point the SECONDARY record") as s:
        _control_plane(lambda: s.note(dnsrecords.upsert_target(contract, db, "dr", new_standby.host)))
    with steps.step("fence the retired instances") as s:
        s.note(_fence_retired(contract, db))
    result["newPrimary"], result["newStandby"] = dataclasses.asdict(new_primary), dataclasses.asdict(new_standby)
    result["pulumiCommands"] = pulumi_commands(contract, db, new_primary)
    with steps.step("record the new topology") as s:
        s.note(_record(contract, db, new_primary, new_standby, outputs))
    return result


def moved_database(db: Database, result: dict[str, Any]) -> Database:
    """``db`` as the stack will declare it after this failback (new instances, record targets)."""
    primary, standby = Endpoint(**result["newPrimary"]), Endpoint(**result["newStandby"])
    return dataclasses.replace(db, primary=primary, standby=standby, dns=dataclasses.replace(
        db.dns, primary_target=primary.host, dr_target=standby.host))


def _endpoint(inst: dict[str, Any]) -> Endpoint:
    return Endpoint(inst["DBInstanceIdentifier"], inst["DBInstanceArn"], inst["Endpoint"]["Address"],
                    int(inst["Endpoint"]["Port"]))


def _fence_retired(contract: Contract, db: Database) -> str:
    """Neither retired instance may take a write: S_g kept the switchover's fence; fence the old primary.

    They are fenced, not stopped: the stack's signal check watches the old primary's metrics until
    ``pulumi up --refresh`` moves it to the new one, and a stopped instance reports none (unhealthy).
    """
    old = dbstate.state(contract, db, "primary")
    if not old.reachable:
        return (f"{db.primary.identifier} unreachable ({old.error}): fence it when it returns, "
                f"or stop it once `pulumi up --refresh` has moved the signal check; {db.standby.identifier} fenced")
    if not old.fenced:
        dbstate.fence(contract, db, "primary")
    return f"{db.primary.identifier} and {db.standby.identifier}: {db.db_name} takes no session (kept, not deleted)"


def _control_plane(call) -> None:
    try:
        call()
    except (BotoCoreError, ClientError) as exc:
        raise PilotlightError(f"the Route53 control plane is needed to fail back ({type(exc).__name__}); "
                              "retry when it is up (failback resumes where it stopped)", Exit.NETWORK) from None


def _repoint_check(contract: Contract, db: Database, endpoint: Endpoint) -> str:
    """The signal health check follows the primary endpoint, as the stack declares it from primaryHost."""
    from scripts import aws  # noqa: PLC0415 - only this step needs Route 53 health checks directly

    r53 = aws.client(contract, "route53", **dnsrecords.CONTROL_PLANE_CONFIG)
    cfg = r53.get_health_check(HealthCheckId=db.dns.health_check_id)["HealthCheck"]["HealthCheckConfig"]
    if cfg.get("Type") in ("CLOUDWATCH_METRIC", "CALCULATED", "RECOVERY_CONTROL"):
        return (f"signal check {db.dns.health_check_id} ({cfg['Type']}) follows the new primary at "
                "`pulumi up --refresh`")
    change: dict[str, Any] = {"Port": endpoint.port or db.port}
    if cfg.get("FullyQualifiedDomainName"):
        change["FullyQualifiedDomainName"] = endpoint.host
    r53.update_health_check(HealthCheckId=db.dns.health_check_id, **change)
    return f"signal check {db.dns.health_check_id} probes {endpoint.host}:{change['Port']}"


def pulumi_commands(contract: Contract, db: Database, new_primary: Endpoint) -> list[str]:
    """What brings the stack into agreement (database index = its position in the contract)."""
    i = contract.databases.index(db)
    lines = [
        f"pulumi config set --path 'pilotlight:databases[{i}].primaryArn' {new_primary.arn} --stack {contract.stack}",
        f"pulumi config set --path 'pilotlight:databases[{i}].primaryHost' {new_primary.host} --stack {contract.stack}",
        f"pulumi config set --path 'pilotlight:databases[{i}].generation' {db.failback.generation + 1} "
        f"--stack {contract.stack}",
        f"pulumi config set pilotlight:active primary --stack {contract.stack}",
    ]
    if db.failback.standby_urn:
        lines.append(f"pulumi state unprotect '{db.failback.standby_urn}' --stack {contract.stack}")
    return lines + [f"pulumi up --refresh --stack {contract.stack}"]


def _next(identifier: str, generation: int) -> str:
    """The generation after ``generation``'s identifiers, as the program names them (``-g<n>``)."""
    suffix = f"-g{generation + 1}"
    return identifier[: -len(suffix)] + f"-g{generation + 2}" if identifier.endswith(suffix) else identifier


def _record(contract: Contract, db: Database, primary: Endpoint, standby: Endpoint, outputs: Path | None) -> str:
    """Write into the outputs file what `pulumi up --refresh` will export; from a live stack, nothing."""
    path = Path(outputs) if outputs else contract.source
    if path is None:
        return "run the pulumi commands above; `pulumi stack output` then shows the new instances"
    doc = json.loads(path.read_text())
    item = doc["databases"][contract.databases.index(db)]
    for key, endpoint in (("primary", primary), ("standby", standby)):
        item[key] = {"identifier": endpoint.identifier, "arn": endpoint.arn, "host": endpoint.host,
                     **({"port": endpoint.port} if "port" in item[key] else {})}
    item["dns"]["primaryTarget"], item["dns"]["drTarget"] = primary.host, standby.host
    g = db.failback.generation
    item["failback"] = {**item["failback"], "generation": g + 1,
                        "primaryIdentifier": _next(db.failback.primary_identifier, g),
                        "standbyIdentifier": _next(db.failback.standby_identifier, g)}
    doc["active"] = "primary"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".outputs-")
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)
    return f"{path} records the new primary and standby (generation {g + 1})"


def _plan(contract: Contract, db: Database, divergence: Divergence) -> list[str]:
    fb = db.failback
    return [
        "set the switch to dr (UpdateHealthCheck), if it is not already",
        *(["back up the diverged old primary into the vault"] if divergence.diverged else []),
        f"create {fb.primary_identifier} in {contract.regions['primary']}: cross-region replica of "
        f"{db.standby.identifier} (KMS {contract.keys['primary'].arn}), wait until caught up",
        "re-point the PRIMARY record and the signal health check at it (the switch still forces dr)",
        f"fence {db.standby.identifier}, promote {fb.primary_identifier}, set the switch to primary, verify DNS",
        f"create {fb.standby_identifier} in {contract.regions['dr']}: replica of {fb.primary_identifier} "
        f"(KMS {contract.keys['dr'].arn}); re-point the SECONDARY record",
        f"fence the retired {db.primary.identifier} and {db.standby.identifier} (kept, not deleted)",
        "then: " + " && ".join(pulumi_commands(contract, db, Endpoint(fb.primary_identifier, "<new ARN>",
                                                                        "<new address>"))),
    ]
