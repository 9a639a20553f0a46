"""Drill reports: JSON for machines, Markdown for the ticket, a self-contained HTML page for people.

One drill result (a plain dict, built by scripts.drills.engine) is written three ways into the report
directory as ``<started>-<scenario>.{json,md,html}``, and ``index.html`` there is rewritten to
list every drill in the directory with its verdict. All three open with what the drill ran
against (the **sandbox** or the named stack), the Pilotlight version and commit, the operator
and start/end; name the backup used; compare the measured RTO/RPO with the objectives and with
the RTO projected on AWS from the stack's own figures; list the smoke checks with their result
and time; list every step with its start, duration
(in units) and outcome; and — when a step failed — say which step and why. Each links to the
other two, to the index and to the stack's runbook (``runbook.html``, written beside them).

The HTML page draws what happened as inline SVG: the heartbeat's acknowledged commits over time
in one lane per side, coloured by the side that acknowledged them, with the failure, detection,
promotion and first-commit-on-DR marks and the RTO window shaded. No scripts, no external
assets, so it can be attached to a game-day ticket as is.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any, Iterable

from scripts.units import seconds as dur

STATUS_COLOURS = {"ok": "#2e7d32", "warning": "#ef6c00", "skipped": "#9e9e9e", "failed": "#c62828"}
SIDE_COLOURS = {"primary": "#1565c0", "dr": "#8e24aa"}
MARK_COLOURS = {"failure": "#c62828", "detection": "#ef6c00", "promotion": "#6d4c41", "recovered": "#2e7d32"}
INDEX, RUNBOOK = "index.html", "runbook.html"

# measured keys as people read them; anything else is split from camelCase
LABELS = {
    "rtoSeconds": "RTO", "rpoSeconds": "RPO",
    "detectionSeconds": "detection (failure until DNS answers dr)",
    "heartbeatGapSeconds": "longest heartbeat gap",
    "longestWriteGapSeconds": "longest write gap",
    "lostAcknowledgedRows": "acknowledged rows lost",
    "poisonedBackup": "poisoned backup (skipped by the restore)",
    "rowsDeleted": "rows deleted", "rowsCopiedBack": "rows copied back",
    "applicationStopSeconds": "stopping the application", "applicationStartSeconds": "starting the application",
}


def label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", key.removesuffix("Seconds")).lower()
    return words


def value(key: str, v: Any) -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and key.endswith("Seconds"):
        return dur(v)
    return str(v)


def stem_of(result: dict[str, Any]) -> str:
    return f"{result['startedAt'].replace(':', '').replace('-', '').split('.')[0]}Z-{result['scenario']}"


def write(result: dict[str, Any], directory: Path, runbook_html: str | None = None) -> dict[str, str]:
    """Write the three files (and the runbook beside them), refresh the index; returns {format: path}."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = stem_of(result)
    paths = {fmt: directory / f"{stem}.{fmt}" for fmt in ("json", "md", "html")}
    if runbook_html is not None:
        (directory / RUNBOOK).write_text(runbook_html)
    links = {fmt: p.name for fmt, p in paths.items()} | {"index": INDEX, "runbook": RUNBOOK}
    paths["json"].write_text(json.dumps({**result, "links": links}, indent=2, default=str) + "\n")
    paths["md"].write_text(markdown(result))
    paths["html"].write_text(page(result))
    paths["index"] = write_index(directory)
    return {fmt: str(p) for fmt, p in paths.items()}


# ---------------------------------------------------------------- shared pieces

def _objective_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(objective, target, measured, projected on AWS, verdict)."""
    obj, got = result.get("objective") or {}, result.get("measured") or {}
    projected = result.get("projectedRto") or {}
    rows = []
    for key, name in (("rtoSeconds", "RTO"), ("rpoSeconds", "RPO")):
        target, measured = obj.get(key), got.get(key)
        verdict = "—" if measured is None else ("met" if target is not None and measured <= target else "MISSED")
        on_aws = "—"
        if key == "rtoSeconds":
            on_aws = dur(projected["seconds"]) if projected.get("seconds") is not None else "not projected"
            if projected.get("seconds") is not None and target is not None and projected["seconds"] > target:
                verdict += " (AWS projection exceeds it)"
        rows.append((name, dur(target), dur(measured), on_aws, verdict))
    return rows


def _extras(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Everything else the drill measured (detection time, heartbeat gap, rows lost...), labelled."""
    m = result.get("measured") or {}
    rows = [(label(k), value(k, v)) for k, v in m.items() if k not in ("rtoSeconds", "rpoSeconds", "heartbeat", "failureAt")]
    beat = m.get("heartbeat")
    if isinstance(beat, dict):
        sides = ", ".join(f"{n} on {side}" for side, n in (beat.get("bySide") or {}).items())
        rows.append(("heartbeat commits acknowledged", f"{beat.get('acknowledged', 0)} ({sides or 'none'})"))
        rows.append(("heartbeat attempts that failed", str(beat.get("failedAttempts", 0))))
    return rows


def _failure_line(result: dict[str, Any]) -> str | None:
    failed = result.get("failedStep")
    if failed:
        return f"step '{failed['name']}' failed: {failed['detail']}"
    if result.get("error"):
        return result["error"]
    return None


def _backup_line(result: dict[str, Any]) -> str:
    backup = result.get("backup")
    if not backup:
        return "none (this scenario recovers from the streaming standby)"
    line = f"{backup.get('id')} taken {backup.get('takenAt', '?')} ({backup.get('tier', '?')})"
    if backup.get("restoreSeconds") is not None:
        line += f", restored in {dur(backup['restoreSeconds'])}"
    return line


def _banner(result: dict[str, Any]) -> str:
    target = result.get("target") or ("sandbox" if result.get("sandbox") else f"stack {result['stack']}")
    return "SANDBOX" if target == "sandbox" else f"REAL {target.upper()}"


def _version(result: dict[str, Any]) -> str:
    v = result.get("pilotlight") or {}
    return f"pilotlight {v.get('version', '?')} (commit {v.get('commit', '?')})"


def _total(steps: list[dict[str, Any]]) -> float:
    return max([s["offsetSeconds"] + s["seconds"] for s in steps] or [1.0]) or 1.0


# ---------------------------------------------------------------- Markdown

def markdown(result: dict[str, Any]) -> str:
    stem = stem_of(result)
    lines = [
        f"# Drill: {result['scenario']} — {result['verdict']}",
        "",
        f"**{_banner(result)}** · stack `{result['stack']}` · database `{result['database']}` · {_version(result)}",
        "",
        f"- operator: {result.get('operator', '?')}",
        f"- started {result['startedAt']}, finished {result.get('finishedAt')}"
        + (f" ({dur(result['wallSeconds'])})" if result.get("wallSeconds") is not None else ""),
        f"- backup used: {_backup_line(result)}",
        f"- this report as [HTML]({stem}.html) · [JSON]({stem}.json) · [all drills]({INDEX}) · [runbook]({RUNBOOK})",
    ]
    failure = _failure_line(result)
    if failure:
        lines.append(f"- **failure: {failure}**")
    where = "sandbox" if result.get("sandbox") else "stack"
    lines += ["", f"| objective | target | measured ({where}) | projected on AWS | |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in _objective_rows(result)]
    basis = (result.get("projectedRto") or {}).get("basis")
    if basis:
        lines += ["", f"Projected RTO on AWS: {basis}."]
    extras = _extras(result)
    if extras:
        lines += ["", "| also measured | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in extras]
    if result.get("checks"):
        lines += ["", "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {c['name']} | {'pass' if c['passed'] else '**FAIL**'} | {c.get('detail', '')} |"
                  for c in result["checks"]]
    if result.get("smokeChecks"):
        lines += ["", "| smoke check | kind | result | started | duration | detail |", "|---|---|---|---|---|---|"]
        lines += [f"| {c['name']} | {c['kind']} | {'pass' if c['passed'] else '**FAIL**'} | {c['startedAt']} | "
                  f"{dur(c['seconds'])} | {str(c.get('detail', '')).replace('|', chr(92) + '|')} |"
                  for c in result["smokeChecks"]]
    lines += ["", "| # | step | start | duration | status | detail |", "|---|---|---|---|---|---|"]
    for i, s in enumerate(result.get("steps", []), 1):
        detail = str(s.get("detail", "")).replace("|", "\\|")
        status = s["status"] if s["status"] in ("ok", "skipped") else f"**{s['status'].upper()}**"
        lines.append(f"| {i} | {s['name']} | +{dur(s['offsetSeconds'])} | {dur(s['seconds'])} | {status} | {detail} |")
    for note in result.get("notes", []):
        lines.append(f"\n> {note}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTML

def _text(s: Any) -> str:
    """Escaped text with `code` spans rendered, never as literal backticks."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(s)))


def marks(result: dict[str, Any]) -> dict[str, float]:
    """Offsets (s, on the steps' clock) of failure, detection, promotion and recovery, where known."""
    steps = result.get("steps", [])
    m = result.get("measured") or {}
    found: dict[str, float] = {}
    inject = next((s for s in steps if s["name"].startswith("inject")), None)
    if inject is None:
        return found
    found["failure"] = inject["offsetSeconds"]
    if isinstance(m.get("detectionSeconds"), (int, float)):
        found["detection"] = found["failure"] + m["detectionSeconds"]
    promote = next((s for s in steps if "promote" in s["name"] and s["status"] == "ok"), None)
    if promote is not None:
        found["promotion"] = promote["offsetSeconds"] + promote["seconds"]
    if isinstance(m.get("rtoSeconds"), (int, float)):
        found["recovered"] = found["failure"] + m["rtoSeconds"]
    return found


def _ticks(total: float) -> list[float]:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if total / step <= 12:
            break
    n = int(total // step) + 1
    return [i * step for i in range(n)]


def picture(result: dict[str, Any], width: int = 1100) -> str:
    """Inline SVG: heartbeat commits per side over time, the marks, the RTO window shaded."""
    commits = ((result.get("measured") or {}).get("heartbeat") or {}).get("commits") or {}
    steps = result.get("steps", [])
    where = marks(result)
    if not commits and not where:
        return ""
    # the heartbeat's period (plus a margin), not the cleanup after it: that is where the outage is
    ends = [max(v) for v in commits.values() if v] + list(where.values())
    total = max(ends) * 1.1 + 0.3 if ends else _total(steps)
    left, right, top = 90, 20, 34
    lanes = [side for side in ("primary", "dr") if side in commits] or ["primary", "dr"]
    lane_h = 46
    plot_h = lane_h * len(lanes)
    height = top + plot_h + 70
    scale = (width - left - right) / total

    def x(t: float) -> float:
        return left + t * scale

    e = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" width="100%" '
           f'aria-label="heartbeat commits over time">',
           '<title>Heartbeat commits over time, by acknowledging side</title>',
           f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{plot_h}" fill="#fafafa" stroke="#ccc"/>']
    if "failure" in where and "recovered" in where:
        x0, x1 = x(where["failure"]), x(where["recovered"])
        out.append(f'<rect class="rto-window" x="{x0:.1f}" y="{top}" width="{max(1.0, x1 - x0):.1f}" height="{plot_h}" '
                   f'fill="#c62828" fill-opacity="0.10"/>')
        out.append(f'<text x="{(x0 + x1) / 2:.1f}" y="{top - 6}" text-anchor="middle" font-size="12" fill="#c62828">'
                   f'RTO window {e(dur(where["recovered"] - where["failure"]))}</text>')
    for i, side in enumerate(lanes):
        y_mid = top + lane_h * i + lane_h / 2
        colour = SIDE_COLOURS.get(side, "#555")
        out.append(f'<text x="{left - 8}" y="{y_mid + 4:.1f}" text-anchor="end" font-size="13" fill="{colour}">'
                   f'{e(side)}</text>')
        ticks = "".join(f"M{x(t):.1f} {y_mid - 12:.1f}v24" for t in commits.get(side, []))
        if ticks:
            out.append(f'<path class="commits" data-side="{e(side)}" d="{ticks}" stroke="{colour}" stroke-width="1.5"/>')
    for t in _ticks(total):
        out.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top + plot_h}" y2="{top + plot_h + 5}" stroke="#888"/>'
                   f'<text x="{x(t):.1f}" y="{top + plot_h + 18}" text-anchor="middle" font-size="11" fill="#555">'
                   f'{e(dur(t) if t else "0 s")}</text>')
    names = {"failure": "failure", "detection": "detected", "promotion": "promoted", "recovered":
             "first commit on dr" if "dr" in commits else "recovered"}
    for n, (kind, t) in enumerate(sorted(where.items(), key=lambda kv: kv[1])):
        colour = MARK_COLOURS[kind]
        out.append(f'<line class="mark" data-mark="{kind}" x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top}" '
                   f'y2="{top + plot_h}" stroke="{colour}" stroke-width="2" stroke-dasharray="5 3"/>')
        y_text = top + plot_h + 34 + 13 * (n % 3)
        near_end = x(t) > width - right - 160  # keep the label inside the picture
        anchor = ' text-anchor="end"' if near_end else ""
        out.append(f'<text x="{x(t) + (-3 if near_end else 3):.1f}" y="{y_text}" font-size="11" fill="{colour}"'
                   f'{anchor}>{e(names[kind])} +{e(dur(t))}</text>')
    out.append("</svg>")
    return "".join(out)


def _row_class(status: str) -> str:
    return {"failed": ' class="failed"', "warning": ' class="warning"'}.get(status, "")


def page(result: dict[str, Any]) -> str:
    e = html.escape
    stem = stem_of(result)
    steps = result.get("steps", [])
    total = _total(steps)
    bars = []
    for s in steps:
        left = 100.0 * s["offsetSeconds"] / total
        width = max(0.4, 100.0 * s["seconds"] / total)
        bars.append(
            f'<tr{_row_class(s["status"])}><td class="n">{e(s["name"])}</td><td class="t"><div class="bar" '
            f'style="margin-left:{left:.2f}%;width:{width:.2f}%;background:{STATUS_COLOURS.get(s["status"], "#555")}" '
            f'title="{e(str(s.get("detail", "")))}"></div></td><td>+{e(dur(s["offsetSeconds"]))}</td>'
            f'<td>{e(dur(s["seconds"]))}</td><td>{e(s["status"])}</td><td>{_text(s.get("detail", ""))}</td></tr>')
    objectives = "".join(
        f'<tr{_row_class("failed" if v.startswith("MISSED") else "warning" if "exceeds" in v else "ok")}>'
        f"<td>{a}</td><td>{b}</td><td>{c}</td><td>{d}</td><td>{e(v)}</td></tr>"
        for a, b, c, d, v in _objective_rows(result))
    checks = "".join(f"<tr{_row_class('ok' if c['passed'] else 'failed')}><td>{_text(c['name'])}</td>"
                     f"<td>{'pass' if c['passed'] else 'FAIL'}</td><td>{_text(c.get('detail', ''))}</td></tr>"
                     for c in result.get("checks", []))
    extras = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _extras(result))
    smoke = "".join(f"<tr{_row_class('ok' if c['passed'] else 'failed')}><td>{_text(c['name'])}</td><td>{e(c['kind'])}</td>"
                    f"<td>{'pass' if c['passed'] else 'FAIL'}</td><td>{e(c['startedAt'])}</td><td>{e(dur(c['seconds']))}</td>"
                    f"<td>{_text(c.get('detail', ''))}</td></tr>" for c in result.get("smokeChecks") or [])
    failure = _failure_line(result)
    passed = result["verdict"] == "PASS"
    banner = _banner(result)
    basis = (result.get("projectedRto") or {}).get("basis")
    where = "sandbox" if result.get("sandbox") else "stack"
    svg = picture(result)
    legend = " ".join(f'<span class="key" style="background:{c}"></span>{e(n)}' for n, c in SIDE_COLOURS.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drill {e(result['scenario'])} {e(result['verdict'])} — {e(banner.lower())}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0 2em 2em;color:#222}} table{{border-collapse:collapse;margin:.5em 0 1em}}
td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}
.banner{{margin:0 -2em 1em;padding:10px 2em;color:#fff;font-weight:600;letter-spacing:.03em}}
.banner.sandbox{{background:#455a64}} .banner.real{{background:#b71c1c}}
.banner small{{font-weight:400;opacity:.9;margin-left:1em}}
.verdict{{color:#fff;background:{'#2e7d32' if passed else '#c62828'};padding:2px 10px;border-radius:4px}}
td.t{{width:25%;min-width:200px}} td{{white-space:nowrap}} td:last-child{{white-space:normal;overflow-wrap:anywhere}}
.bar{{height:14px;border-radius:2px}} tr.failed{{background:#ffebee}} tr.warning{{background:#fff3e0}}
.fail{{background:#ffebee;border-left:4px solid #c62828;padding:8px}} nav a{{margin-right:1em}}
code{{background:#f1f1f1;padding:0 3px;border-radius:3px}} .key{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}}
.basis{{color:#555;font-size:.92em}}
</style></head><body>
<div class="banner {'sandbox' if banner == 'SANDBOX' else 'real'}">{e(banner)}<small>{e(_version(result))}</small></div>
<h1>Drill: {e(result['scenario'])} <span class="verdict">{e(result['verdict'])}</span></h1>
<nav>This report as <a href="{e(stem)}.md">Markdown</a> <a href="{e(stem)}.json">JSON</a> · <a href="{INDEX}">all drills</a> · <a href="{RUNBOOK}">runbook</a></nav>
<p>Stack <code>{e(result['stack'])}</code>, database <code>{e(result['database'])}</code>; operator {e(str(result.get('operator', '?')))};
started {e(result['startedAt'])}, finished {e(str(result.get('finishedAt')))}{f' ({e(dur(result["wallSeconds"]))})' if result.get('wallSeconds') is not None else ''}.<br>
Backup used: {e(_backup_line(result))}</p>
{f'<p class="fail">{_text(failure)}</p>' if failure else ''}
<h2>Objectives</h2>
<table><tr><th>objective</th><th>target</th><th>measured ({where})</th><th>projected on AWS</th><th>verdict</th></tr>{objectives}</table>
{f'<p class="basis">Projected RTO on AWS: {_text(basis)}.</p>' if basis else ''}
{f'<h2>What happened</h2><p class="basis">Each tick is a heartbeat commit acknowledged through the service name;{legend}</p>{svg}' if svg else ''}
{f'<h2>Also measured</h2><table>{extras}</table>' if extras else ''}
{f'<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>detail</th></tr>{checks}</table>' if checks else ''}
{f'<h2>Smoke checks</h2><table><tr><th>smoke check</th><th>kind</th><th>result</th><th>started</th><th>duration</th><th>detail</th></tr>{smoke}</table>' if smoke else ''}
<h2>Steps</h2>
<table><tr><th>step</th><th>0 … {e(dur(total))}</th><th>start</th><th>duration</th><th>status</th><th>detail</th></tr>
{''.join(bars)}</table>
{''.join(f'<p><em>{_text(n)}</em></p>' for n in result.get('notes', []))}
</body></html>
"""


# ---------------------------------------------------------------- index

def _drills(directory: Path) -> Iterable[dict[str, Any]]:
    for path in directory.glob("*.json"):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and {"scenario", "verdict", "startedAt"} <= set(doc):
            yield {**doc, "_stem": path.stem}


def index_page(drills: list[dict[str, Any]], has_runbook: bool) -> str:
    e = html.escape
    rows = []
    for d in sorted(drills, key=lambda d: d["startedAt"], reverse=True):
        m = d.get("measured") or {}
        cls = "" if d["verdict"] == "PASS" else ' class="failed"'
        rows.append(f'<tr{cls}><td>{e(d["startedAt"])}</td><td><a href="{e(d["_stem"])}.html">{e(d["scenario"])}</a></td>'
                    f'<td class="v">{e(d["verdict"])}</td><td>{e(_banner(d).lower())}</td>'
                    f'<td>{e(dur(m.get("rtoSeconds")))}</td><td>{e(dur(m.get("rpoSeconds")))}</td>'
                    f'<td><a href="{e(d["_stem"])}.md">md</a> <a href="{e(d["_stem"])}.json">json</a></td></tr>')
    runbook = f'<p><a href="{RUNBOOK}">The stack\'s runbook</a></p>' if has_runbook else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Pilotlight drills</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}} tr.failed{{background:#ffebee}}
tr.failed td.v{{color:#c62828;font-weight:600}} td.v{{color:#2e7d32;font-weight:600}}</style></head><body>
<h1>Drills ({len(drills)})</h1>{runbook}
<table><tr><th>started (UTC)</th><th>scenario</th><th>verdict</th><th>ran against</th><th>RTO</th><th>RPO</th><th>also as</th></tr>
{''.join(rows)}</table>
</body></html>
"""


def write_index(directory: Path) -> Path:
    path = directory / INDEX
    path.write_text(index_page(list(_drills(directory)), (directory / RUNBOOK).exists()))
    return path
