"""`pilotlight sandbox up | down | status`: the local stand-in for a real DR stack.

``up`` starts moto (AWS emulator) behind one proxy per region, two real PostgreSQL 15 clusters
(a primary and its streaming standby), a loopback DNS server for the zone, the health prober
and the emulated S3 replicator; provisions keys, buckets, topic, zone and records from the
stack config; and writes the outputs contract that every other command reads by default.
A second ``up`` reuses a healthy sandbox and replaces a broken one. ``down`` stops every
process it started. See docs/sandbox.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from scripts.common import Exit, UsageError
from scripts.commands.parser import emit, fail, parser_for, run
from scripts.contract import SANDBOX_DIR_ENV, default_sandbox_dir
from scripts.sandbox import lifecycle, pitr
from scripts.sandbox.rds import Timing


def parse_arguments() -> argparse.ArgumentParser:
    parser = parser_for("sandbox", __doc__.split("\n\n")[0].split(": ", 1)[1], sources=())
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        help=f"where the sandbox keeps its state and writes outputs.json (default: ${SANDBOX_DIR_ENV}, "
                             "else .pilotlight/sandbox under the project root, the directory holding Pulumi.yaml)")
    parser.add_argument("--config", type=Path, default=lifecycle.DEFAULT_CONFIG, metavar="FILE",
                        help="stack config the sandbox is built from (default: Pulumi.dr.yaml)")
    parser.add_argument("--rds-timing", default="fast", metavar="SPEC",
                        help="emulated RDS transition times: fast (default), aws (AWS-like minutes), "
                             "or KEY=SECONDS,... e.g. promote=60")
    parser.add_argument("--seed-rows", type=int, default=1000, metavar="N",
                        help="demo rows per table in the sandbox database (up; default 1000)")
    parser.add_argument("--schedule-speed", type=float, default=0, metavar="N",
                        help="run the stack's scheduled jobs (backups, verification), N times faster than real "
                             "time (up; default 0: off)")
    parser.add_argument("--backup-copy-delay", type=float, default=pitr.DEFAULT_COPY_DELAY_SECONDS, metavar="SECONDS",
                        help="delay before archived WAL and base backups reach the other region's copy of the "
                             f"automated backups (up; default {pitr.DEFAULT_COPY_DELAY_SECONDS:g})")
    return parser


def body(args: argparse.Namespace) -> Exit:
    args.state_dir = args.state_dir or default_sandbox_dir()
    if args.seed_rows < 0:
        raise UsageError(f"--seed-rows must be >= 0, got {args.seed_rows}")
    if not 0 <= args.schedule_speed <= 1_000_000:
        raise UsageError(f"--schedule-speed must be from 0 (off) to 1000000, got {args.schedule_speed:g}")
    if args.backup_copy_delay < 0:
        raise UsageError(f"--backup-copy-delay must be >= 0 seconds, got {args.backup_copy_delay:g}")
    if args.action == "up":
        try:
            Timing.parse(args.rds_timing)
        except ValueError as exc:
            raise UsageError(f"--rds-timing: {exc}") from None
        doc, reused = lifecycle.up(args.state_dir, args.config, args.seed_rows, args.schedule_speed, args.rds_timing,
                                   args.backup_copy_delay)
        outputs = args.state_dir.absolute() / "outputs.json"
        emit(args, {"state": "up", "reused": reused, "outputs": str(outputs), "contract": doc},
             lambda: _up_lines(doc, outputs, reused))
        return Exit.OK
    if args.action == "down":
        result = lifecycle.down(args.state_dir)
        if not result["wasRunning"]:  # nothing was stopped: never report success for a sandbox not found
            return fail(parser_prog(), f"no sandbox found in {args.state_dir} (nothing stopped); "
                                       f"pass --state-dir or set {SANDBOX_DIR_ENV} to where it was started",
                        Exit.FAILED, json_out=args.json)
        emit(args, result, lambda: [f"sandbox stopped ({', '.join(result['stopped'])})"])
        return Exit.OK
    report = lifecycle.status(args.state_dir)
    emit(args, report, lambda: _status_lines(report))
    return Exit.OK if report["healthy"] else Exit.FAILED


def parser_prog() -> str:
    return "pilotlight sandbox"


def _up_lines(doc: dict, outputs: Path, reused: bool) -> list[str]:
    sb = doc["sandbox"]
    lines = [f"sandbox {'already up (reused)' if reused else 'up'}; contract: {outputs}"]
    lines += [f"  aws {name:<10} {url}" for name, url in sb["awsEndpoints"].items()]
    lines.append(f"  dns            {sb['dns']['host']}:{sb['dns']['port']}  zone {doc['dns']['zoneName']}")
    lines += [f"  postgres {side:<6} 127.0.0.1:{c['port']}  {c['dataDir']}" for side, c in sb["clusters"].items()]
    lines.append(f"  passfile       {sb['passfile']}  (users {sb['superuser']}, {sb['appUser']})")
    return lines


def _status_lines(report: dict) -> list[str]:
    lines = [f"sandbox {report['state']} ({report['stateDir']})"]
    for name, proc in report["processes"].items():
        extra = f"  {proc['role']}" if proc.get("role") else ""
        extra += f"  (RDS: {proc['rdsStatus']})" if proc.get("rdsStatus") else ""
        alive = "alive" if proc["alive"] else ("down" if proc.get("rdsStatus") else "DEAD")
        lines.append(f"  {name:<8} pid {proc['pid'] or '-':<8} {alive}{extra}")
    daemon = report.get("daemon") or {}
    for name, proxy in (daemon.get("proxies") or {}).items():
        lines.append(f"  proxy {name:<10} :{proxy['port']}  {proxy['mode']}")
    for cid, check in (daemon.get("healthChecks") or {}).items():
        what = (f"calculated >= {check['healthThreshold']} of {len(check['children'])}" if "children" in check
                else f"{check['ip']}:{check['port']}")
        lines.append(f"  health {cid[:8]} {what}  {'healthy' if check['healthy'] else 'UNHEALTHY'}")
    if daemon.get("replicator"):
        rep = daemon["replicator"]
        lines.append(f"  replicator     {rep['replicated']} copied, {rep['deleteMarkers']} delete markers, "
                     f"{rep['failed']} failed{', PAUSED' if rep['paused'] else ''}")
    if daemon.get("automatedBackups"):
        ab = daemon["automatedBackups"]
        lines.append(f"  backups        {ab['copied']} copied to the other region, {ab['baseBackups']} base backups, "
                     f"{ab['errors']} errors{', PAUSED' if ab['paused'] else ''}")
    return lines


def main(argv: list[str] | None = None) -> int:
    return run(body, parse_arguments(), argv)
