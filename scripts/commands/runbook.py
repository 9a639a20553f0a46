"""`pilotlight runbook`: this stack's DR runbook, generated from the outputs contract.

The reference runbooks are written by hand and go stale: a bucket is renamed, an objective
changes, a command grows a flag. This one is rendered from the stack's outputs every time, so
every command names this stack's real buckets, zone, record, standby and regions, and every
scenario carries the objectives the stack declares. It keeps what the reference runbooks keep:
per-scenario procedures, the database-recovery, regional-outage and post-incident checklists, and
an incident post-mortem template; plus a table of contents, the contacts and escalation order
from the stack config (``pilotlight:contacts``), and the schedule the stack runs by itself.

Every procedure ends on a writable target: a restore never goes into the read-only standby nor
into the lost instance (a new instance, ``restore --new-instance``, or the promoted standby), and
a test restore only ever into a scratch server. Commands longer than :data:`WIDTH` are wrapped
with shell continuations, so a printed or rendered runbook never cuts one off.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from scripts.common import Exit, UsageError, iso, utcnow
from scripts.commands.parser import emit, load_contract, parser_for, run
from scripts.contract import Contract, Database

TITLES = {
    "regional-outage": "Regional outage",
    "database-loss": "Database loss",
    "data-corruption": "Data corruption",
    "ransomware": "Ransomware",
    "accidental-deletion": "Accidental deletion",
}


# Which recovery mechanism meets each scenario's objectives (stacks/objectives.py checks the floors).
MECHANISMS = {
    "regional-outage": "standby promotion + DNS failover (RPO = replica lag)",
    "database-loss": "standby promotion + DNS failover (RPO = replica lag); a new instance from the newest backup otherwise",
    "data-corruption": "point-in-time restore, DR region (RPO = PITR granularity, ~5 min on RDS); newest backup otherwise",
    "ransomware": "locked backups in the DR vault (RPO = backup age)",
    "accidental-deletion": "point-in-time restore + copy-back (RPO = PITR granularity); partial backup restore otherwise",
}


WIDTH = 96  # characters of a command line before it is continued (`` \\``) on the next
SCRATCH_SERVER = "postgresql://postgres@127.0.0.1:5439/postgres"


def duration(seconds: float) -> str:
    """A readable objective: 60 s, 15 min, 4 h, 2 d."""
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


class Commands:
    """The exact commands for one stack, with its source flag and its names filled in."""

    def __init__(self, contract: Contract, source: str):
        self.c = contract
        self.source = source

    def pl(self, command: str) -> str:
        return f"pilotlight {command} {self.source}"

    def dsn(self, db: Database, side: str) -> str:
        host = db.primary.host if side == "primary" else db.standby.host
        return f'"postgresql://$PGUSER@{host}:{db.port}/{db.db_name}"'

    def aws(self, side: str, command: str) -> str:
        return f"aws --region {self.c.region(side)} {command}"


def _code(lines: list[str]) -> list[str]:
    return ["```sh", *(part for line in lines for part in wrap(line)), "```", ""]


def wrap(command: str, width: int = WIDTH) -> list[str]:
    """A long shell command as continued lines (`` \\``), broken before an option, never inside a word.

    Pasted, the lines run as the one command; a word longer than the width stays whole.
    """
    if len(command) <= width:
        return [command]
    words = re.split(r" (?=--?[A-Za-z])", command)
    lines, cur = [], words[0]
    for word in words[1:]:
        if len(cur) + 1 + len(word) + 2 > width:
            lines.append(cur + " \\")
            cur = "    " + word
        else:
            cur += " " + word
    return lines + [cur]


def _checklist(items: list[str]) -> list[str]:
    return [f"- [ ] {item}" for item in items] + [""]


def _names(c: Contract) -> list[str]:
    out = [
        "## This stack", "",
        "| what | primary side | DR side |", "|---|---|---|",
        f"| region | `{c.region('primary')}` | `{c.region('dr')}` |",
        f"| backup vault bucket | `{c.buckets['primary'].bucket}` | `{c.buckets['dr'].bucket}` |",
        f"| KMS key | `{c.keys['primary'].arn}` | `{c.keys['dr'].arn}` |",
    ]
    for db in c.databases:
        out.append(f"| database `{db.name}` | `{db.primary.identifier}` (`{db.primary.host}`) "
                   f"| standby `{db.standby.identifier}` (`{db.standby.host}`) |")
    out += [
        "", f"- Hosted zone `{c.zone_name}` (`{c.zone_id}`), failover TTL {c.ttl} s.",
        *(f"- Service name `{db.dns.record_name}` → health check `{db.dns.health_check_id}`; "
          f"PRIMARY `{db.dns.primary_target}`, SECONDARY `{db.dns.dr_target}`." for db in c.databases),
        f"- Object Lock `{c.object_lock_mode}`, {c.object_lock_days} days; alarms to `{c.topic_arn}`.",
        f"- Active side per the stack config: **{c.active}**.", "",
        "| backup tier | prefix | every | kept |", "|---|---|---|---|",
        *(f"| {t.name} | `{t.prefix}` | {duration(t.interval_seconds)} | {t.retention_days} d |" for t in c.tiers.values()),
        "",
    ]
    return out


def _objectives(c: Contract) -> list[str]:
    rows = [f"| {TITLES[name]} | {duration(o.rto_seconds)} | {duration(o.rpo_seconds)} | {MECHANISMS[name]} |"
            for name, o in c.objectives.items()]
    return ["## Objectives", "", "| scenario | RTO | RPO | met by |", "|---|---|---|---|", *rows, "",
            "Measured against these by `pilotlight drill`; `pilotlight status` shows where the stack stands now.", ""]


def _drill(c: Contract) -> str:
    """A drill breaks things for real, so it must name the stack (docs/drills.md)."""
    return f"drill --scenario regional-outage --yes-on-stack {c.stack}"


def _scenario_header(c: Contract, name: str) -> list[str]:
    o = c.objectives[name]
    return [f"## {TITLES[name]} — RTO {duration(o.rto_seconds)}, RPO {duration(o.rpo_seconds)}", ""]


def _regional_outage(c: Contract, x: Commands, db: Database) -> list[str]:
    other = "primary" if c.active == "dr" else "dr"
    target = db.dns.dr_target if other == "dr" else db.dns.primary_target
    return [
        *_scenario_header(c, "regional-outage"),
        f"`{c.region(c.active)}` ({c.active}, serving now) is down. Route 53 fails `{db.dns.record_name}` over to "
        f"`{target}` on its own when health check `{db.dns.health_check_id}` fails (data plane: no record change "
        "needed). You promote and verify.", "",
        "1. Confirm the outage and the health check state:", "",
        *_code([
            f"aws route53 get-health-check-status --health-check-id {db.dns.health_check_id}",
            x.aws(other, f"rds describe-db-instances --db-instance-identifier "
                         f"{(db.standby if other == 'dr' else db.primary).identifier} "
                        "--query 'DBInstances[0].[DBInstanceStatus,ReadReplicaSourceDBInstanceIdentifier]'"),
            x.pl("status"),
        ]),
        "2. Rehearse, then promote the standby and move the service name (idempotent):", "",
        *_code([x.pl(f"cutover --to {other} --database {db.name} --dry-run"),
                x.pl(f"cutover --to {other} --database {db.name} --yes")]),
        "3. Check what clients resolve, straight from the zone's name servers:", "",
        *_code([f"for ns in $(aws route53 get-hosted-zone --id {c.zone_id} --query 'DelegationSet.NameServers' "
                "--output text); do", f"  dig +short {db.dns.record_name} @\"$ns\"", "done"]),
        "4. Record the new active side so the next `pulumi up --refresh` keeps the failover (it reads what the "
        "cutover changed first):", "",
        *_code([f"pulumi config set pilotlight:active {other} --stack {c.stack}", f"pulumi up --refresh --stack {c.stack}"]),
        f"5. Check the {other} vault holds recent backups:", "",
        *_code([x.pl(f"backups list --region {other}"), x.pl("verify --all")]),
    ]


def _database_loss(c: Contract, x: Commands, db: Database) -> list[str]:
    lost = db.endpoint(c.active)
    other = "primary" if c.active == "dr" else "dr"
    survivor = db.endpoint(other)
    return [
        *_scenario_header(c, "database-loss"),
        f"The instance serving `{db.name}`, `{lost.identifier}`, is gone or unusable while `{c.region(c.active)}` is "
        "up. Never restore into the lost instance: recover onto one that works.", "",
        f"1. Fastest (RPO = replica lag): promote the standby `{survivor.identifier}` and move the service name "
        "(steps 2–4 of the regional outage):", "",
        *_code([x.pl(f"cutover --to {other} --database {db.name} --dry-run"),
                x.pl(f"cutover --to {other} --database {db.name} --yes")]),
        "2. Or, when the standby is unusable too: a NEW instance with the stack's network, parameter group, KMS key "
        f"and class in `{c.region(other)}` (the outputs hold that region's settings; the lost instance's can no "
        "longer be read), the newest verified backup restored into it (RPO = backup age); the roles come from the "
        "backup without passwords — set them from Secrets Manager or use IAM authentication:", "",
        *_code([x.pl(f"backups list --region {other} --database {db.name}"),
                x.pl(f"restore --database {db.name} --new-instance --from-region {other} --latest --dry-run"),
                x.pl(f"restore --database {db.name} --new-instance --from-region {other} --latest --yes")]),
        "   Then point the service at the new instance (its endpoint is printed) and remove what is no longer needed "
        "(`restore --list-restored`, `restore --cleanup NAME`).", "",
    ]


def _pitr(c: Contract, x: Commands, db: Database, copy: str) -> list[str]:
    """Point-in-time restore from the DR region's replicated automated backups into a NEW instance."""
    when = "2026-01-01T10:41:59Z"
    return [
        "1. Find the last good second (ISO 8601 with zone) and check it is restorable (both regions):", "",
        *_code([x.pl(f"backups list --region dr --database {db.name}"), x.pl("status")]),
        "2. Restore to it into a new instance (the stack's subnet group, security group, parameter group, class; "
        "the DR key), from the DR copy so it works with the primary region gone; plan first:", "",
        *_code([x.pl(f"restore --database {db.name} --to-time {when} --from-region dr {copy}"),
                x.pl(f"restore --database {db.name} --to-time {when} --from-region dr {copy} --yes")]),
        "3. Check the rows, then remove the restored instance:", "",
        *_code([x.pl("restore --list-restored"),
                x.pl(f"restore --cleanup {naming_hint(c, db)} --from-region dr --yes")]),
    ]


def naming_hint(c: Contract, db: Database) -> str:
    return f"{c.project}-{c.stack}-{db.name}-pitr-YYYYmmddHHMMSS"


def _data_corruption(c: Contract, x: Commands, db: Database) -> list[str]:
    return [
        *_scenario_header(c, "data-corruption"),
        f"Met by {MECHANISMS['data-corruption']}. Find when the damage started; restore to the second before it "
        "and write the table back over the corrupted rows (rows the restore does not have are never touched):", "",
        *_pitr(c, x, db, "--copy-back public.orders --overwrite"),
        "Without automated backups (or beyond their retention): restore the newest backup from before the damage. "
        "Restore never overwrites: the damaged database is kept as `<name>_pre_restore_<timestamp>`.", "",
        *_code([x.pl("backups list"),
                x.pl(f"restore --database {db.name} --target {x.dsn(db, c.active)} --before 2026-01-01T00:00:00Z --dry-run"),
                x.pl(f"restore --database {db.name} --target {x.dsn(db, c.active)} --before 2026-01-01T00:00:00Z --yes")]),
        "Replace `2026-01-01T00:00:00Z` with the first known bad time (ISO 8601, UTC).", "",
    ]


def _ransomware(c: Contract, x: Commands, db: Database) -> list[str]:
    return [
        *_scenario_header(c, "ransomware"),
        f"Assume the primary side's credentials are compromised. Backups are locked (`{c.object_lock_mode}`, "
        f"{c.object_lock_days} days) and replicated to `{c.buckets['dr'].bucket}`; restore from the DR side "
        "only, from before the attack, with credentials the attacker never had.", "",
        f"The restore goes into a writable target: a NEW instance in `{c.region('dr')}` (the stack's network, "
        f"parameter group, DR key). Never into the standby `{db.standby.identifier}`: it is a read-only replica "
        "(promote it first — step 1 of database loss — only if the attack did not reach it).", "",
        *_code([x.aws("dr", f"s3api get-object-lock-configuration --bucket {c.buckets['dr'].bucket}"),
                x.pl("backups list --region dr"),
                x.pl(f"restore --database {db.name} --new-instance --from-region dr "
                     "--before 2026-01-01T00:00:00Z --dry-run"),
                x.pl(f"restore --database {db.name} --new-instance --from-region dr "
                     "--before 2026-01-01T00:00:00Z --yes")]),
        "Replace `2026-01-01T00:00:00Z` with the first known bad time. Rotate every database and AWS credential "
        "(the restored roles have no passwords until set from Secrets Manager) before reopening traffic.", "",
    ]


def _accidental_deletion(c: Contract, x: Commands, db: Database) -> list[str]:
    return [
        *_scenario_header(c, "accidental-deletion"),
        f"Met by {MECHANISMS['accidental-deletion']}. Restore to the second before the delete and copy the missing "
        "rows back (rows still present are not touched; `--where` narrows it, e.g. `--where \"s.id = 42\"`):", "",
        *_pitr(c, x, db, "--copy-back public.orders"),
        "Or from the newest backup: restore just the affected tables into a side schema, then copy the rows back.", "",
        *_code([x.pl(f"restore --database {db.name} --target {x.dsn(db, c.active)} --latest "
                     "--tables public.orders --into-schema recovered --yes"),
                f"psql {x.dsn(db, c.active)} -c 'INSERT INTO public.orders SELECT * FROM recovered.orders "
                "ON CONFLICT DO NOTHING'"]),
    ]


def _failback(c: Contract, x: Commands, db: Database) -> list[str]:
    return [
        "## Failback", "",
        f"When `{c.region('primary')}` is healthy again: a new primary is built from the serving side (RDS "
        "cross-region replica), switched back, a new DR replica made; run the `pulumi` commands it prints.", "",
        *_code([x.pl(f"failback --to primary --database {db.name} --dry-run"),
                x.pl(f"failback --to primary --database {db.name} --yes"),
                "# then the `pulumi config set` commands failback prints (new primary, generation, active side)",
                f"pulumi up --refresh --stack {c.stack}"]),
    ]


CHECKLISTS = {
    "Database recovery checklist": [
        "Incident detected and classified; team notified; status page updated",
        f"Latest backup identified (`backups list`) and verified (`verify --backup ID --test-restore --server "
        f"{SCRATCH_SERVER}`)",
        "Application writes stopped or drained (`restore` and `cutover` stop and start the application the stack "
        "declares, `databases[].application`)",
        "Database restored (new database, swapped in; previous kept for rollback)",
        "Row counts match the backup manifest; the stack's smoke checks pass (`restore` runs them; a failure exits 1 "
        "and prints the `restore --rollback` command)",
        "Application writes resumed; error rate and latency normal",
        "Monitoring and backup-age alarms green (`pilotlight status`)",
        "Status page updated (resolved); post-mortem scheduled",
    ],
    "Regional outage checklist": [
        "Outage confirmed (health check failing, AWS Health Dashboard)",
        "Standby promoted; DNS answers the DR target from every authoritative name server",
        "Application running in the DR region and reachable from the public internet",
        "`pilotlight:active` set to `dr` and `pulumi up` run (no revert on the next deploy)",
        "Backups running against the DR side; `verify --all` passes",
        "Monitoring and alerting operational in the DR region",
        "Failback planned for when the primary region recovers",
    ],
    "Post-incident checklist": [
        "All services operational; data integrity confirmed",
        "Logs reviewed for errors; security measures reviewed (credentials rotated if in doubt)",
        "Timeline documented: detected, recovery started, service restored",
        "Actual RTO/RPO recorded against the objectives above",
        "Stakeholders notified; post-mortem within 24 hours (template below)",
        f"Backups tested after recovery (`verify --all --test-restore --server {SCRATCH_SERVER}`: a scratch server)",
        "Runbook, objectives or stack config updated; follow-up drill scheduled",
    ],
}


def _postmortem(c: Contract) -> list[str]:
    rows = [f"| {TITLES[n]} | {duration(o.rto_seconds)} | | {duration(o.rpo_seconds)} | |" for n, o in c.objectives.items()]
    return [
        "## Incident post-mortem template", "",
        "```markdown", f"# Incident post-mortem: [title] — stack {c.project}/{c.stack}", "",
        "## Summary", "- Date (UTC): YYYY-MM-DD", "- Duration:", "- Severity: P0/P1/P2", "- Impact:",
        "- Scenario: regional outage | database loss | data corruption | ransomware | accidental deletion", "",
        "## Timeline (UTC, ISO 8601)", "- HH:MM:SSZ failure began", "- HH:MM:SSZ detected (alarm / health check)",
        "- HH:MM:SSZ recovery started", "- HH:MM:SSZ service restored (first successful write)", "- HH:MM:SSZ resolved", "",
        "## Objectives against measured", "| scenario | RTO objective | RTO measured | RPO objective | RPO measured |",
        "|---|---|---|---|---|", *rows, "",
        "## Recovery used", "- Backup id / standby promoted:", "- Commands run (paste from the terminal):", "",
        "## Root cause", "", "## What went well", "", "## What could be improved", "",
        "## Action items", "- [ ] Item (owner, due date)", "```", "",
    ]


def _routine(c: Contract, x: "Commands") -> list[str]:
    """The schedule the stack runs by itself, and the checks an operator adds."""
    lines = ["## Routine", ""]
    if c.jobs:
        lines += ["These run by themselves (EventBridge Scheduler starts each as an ECS Fargate task):", "",
                  "| job | schedule | time zone | region | runs |", "|---|---|---|---|---|"]
        lines += [f"| `{j.name}` | `{j.schedule}` | {j.timezone} | {j.region} | `pilotlight {' '.join(j.command[:-1])}` |"
                  for j in c.jobs]
        lines += ["", "The verification restores into a scratch PostgreSQL running beside it in the same task "
                  "(127.0.0.1), never into a production server. A failed job reaches the alarm topic.", ""]
    else:
        lines += ["No scheduled jobs in the outputs: run backups and verification from your own scheduler.", ""]
    lines += ["Daily, check the objectives; monthly, run a drill. A manual test restore goes into a scratch "
              "server you start for it on your own machine, never into production (`--server` is required):", "",
              *_code(["podman run --rm -d --name pilotlight-scratch -p 127.0.0.1:5439:5432 "
                      "-e POSTGRES_HOST_AUTH_METHOD=trust postgres:15",
                      x.pl("status"), x.pl(f"verify --all --test-restore --server {SCRATCH_SERVER}"),
                      "podman rm -f pilotlight-scratch", x.pl(_drill(c))])]
    return lines


def _contacts(c: Contract) -> list[str]:
    """Who to call, in escalation order (``pilotlight:contacts``)."""
    lines = ["## Contacts and escalation", ""]
    if not c.contacts:
        return lines + ["No contacts in the stack config: declare them as `pilotlight:contacts` (name, role, reach, "
                        "escalateAfter; the list order is the escalation order) and regenerate.", ""]
    lines += ["Call in this order; when nobody answers within the time given, call the next.", "",
              "| # | who | role | reach | escalate after |", "|---|---|---|---|---|"]
    lines += [f"| {i} | {p.name} | {p.role} | {p.reach} | "
              f"{duration(p.escalate_after_seconds) if p.escalate_after_seconds else '—'} |"
              for i, p in enumerate(c.contacts, 1)]
    return lines + [""]


def slug(heading: str) -> str:
    """The anchor of a heading, as GitHub and the HTML rendering name it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _contents(lines: list[str]) -> list[str]:
    """A table of contents of the second-level headings (code blocks skipped)."""
    out, in_code = ["## Contents", ""], False
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("## "):
            out.append(f"- [{line[3:]}](#{slug(line[3:])})")
    return out + [""]


def render_markdown(c: Contract, source: str, generated: str) -> str:
    x = Commands(c, source)
    head = [
        f"# DR runbook — {c.project}/{c.stack}", "",
        f"Generated {generated} by `pilotlight runbook` from the stack outputs; regenerate rather than edit.", "",
    ]
    lines = [*_contacts(c), *_names(c), *_objectives(c), *_routine(c, x)]
    for db in c.databases:
        if len(c.databases) > 1:
            lines += [f"# Database `{db.name}`", ""]
        for section in (_regional_outage, _database_loss, _data_corruption, _ransomware, _accidental_deletion, _failback):
            lines += section(c, x, db)
    for title, items in CHECKLISTS.items():
        lines += [f"## {title}", "", *_checklist(items)]
    lines += _postmortem(c)
    return "\n".join([*head, *_contents(lines), *lines])


def render_html(markdown: str, title: str) -> str:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse(markdown)
    for i, token in enumerate(tokens):  # the contents' links land on the headings
        if token.type == "heading_open":
            token.attrSet("id", slug(tokens[i + 1].content))
    body = md.renderer.render(tokens, md.options, {})
    style = ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
             "pre{background:#f4f4f4;padding:.75rem;white-space:pre-wrap;overflow-wrap:anywhere}"
             "table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.25rem .5rem}")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{style}</style></head>\n<body>\n{body}</body></html>\n")


def source_flag(args: argparse.Namespace, contract: Contract) -> str:
    """How the runbook's commands find this stack: the same way this run did."""
    if args.outputs is not None:
        return f"--outputs {args.outputs}"
    if contract.source is not None:
        return f"--outputs {contract.source}"
    return f"--stack {contract.stack}"


def parse_arguments(argv: list[str] | None) -> argparse.ArgumentParser:
    parser = parser_for("runbook", "Render this stack's DR runbook (Markdown or HTML) from its outputs.")
    parser.add_argument("--format", choices=("md", "html"), default="md", help="output format (default: md)")
    parser.add_argument("--out", metavar="FILE", type=Path, help="write here instead of stdout")
    return parser


def body(args: argparse.Namespace) -> Exit:
    contract = load_contract(args)
    text = render_markdown(contract, source_flag(args, contract), iso(utcnow()))
    if args.format == "html":
        text = render_html(text, f"DR runbook — {contract.project}/{contract.stack}")
    if args.json:
        emit(args, {"stack": contract.stack, "format": args.format, "runbook": text})
        return Exit.OK
    if args.out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        return Exit.OK
    try:
        args.out.write_text(text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out}: {exc.strerror}") from None
    if not args.quiet:
        print(f"runbook written to {args.out}", file=sys.stderr)
    return Exit.OK


def main(argv: list[str] | None = None) -> int:
    return run(body, parse_arguments(argv), argv)
