"""Drill reports: JSON for machines, Markdown for the ticket, a self-contained HTML timeline for people.

One drill result (a plain dict, built by scripts.drills.engine) is written three ways into the report
directory as ``<started>-<scenario>.{json,md,html}``. All three name the backup used, list every
step with its start offset, duration and outcome, compare measured RTO/RPO with the stack's
objectives, and — when a step failed — say which step and why. The HTML page has no external
assets (inline CSS, no scripts), so it can be attached to a game-day ticket as is.
"""
from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

_COLOURS = {"ok": "#2e7d32", "warning": "#ef6c00", "skipped": "#9e9e9e", "failed": "#c62828"}


def _secs(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} s"


def write(result: dict[str, Any], directory: Path) -> dict[str, str]:
    """Write the three files; returns {format: path}."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{result['startedAt'].replace(':', '').replace('-', '').split('.')[0]}Z-{result['scenario']}"
    paths = {fmt: directory / f"{stem}.{fmt}" for fmt in ("json", "md", "html")}
    paths["json"].write_text(json.dumps(result, indent=2, default=str) + "\n")
    paths["md"].write_text(markdown(result))
    paths["html"].write_text(page(result))
    return {fmt: str(p) for fmt, p in paths.items()}


def _objective_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    obj, got = result.get("objective") or {}, result.get("measured") or {}
    rows = []
    for key, label in (("rtoSeconds", "RTO"), ("rpoSeconds", "RPO")):
        target, measured = obj.get(key), got.get(key)
        verdict = "—" if measured is None else ("met" if target is not None and measured <= target else "MISSED")
        rows.append((label, _secs(target), _secs(measured), verdict))
    return rows


def _extras(result: dict[str, Any]) -> list[tuple[str, str]]:
    """Everything else the drill measured (detection time, heartbeat gap, rows lost...)."""
    skip = {"rtoSeconds", "rpoSeconds", "heartbeat", "failureAt"}
    return [(k, f"{v:.3f} s" if k.endswith("Seconds") else str(v))
            for k, v in (result.get("measured") or {}).items() if k not in skip]


def _failure_line(result: dict[str, Any]) -> str | None:
    failed = result.get("failedStep")
    if failed:
        return f"step '{failed['name']}' failed: {failed['detail']}"
    if result.get("error"):
        return result["error"]
    return None


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"# Drill: {result['scenario']} — {result['verdict']}",
        "",
        f"- stack: `{result['stack']}`, database: `{result['database']}`",
        f"- started {result['startedAt']}, finished {result.get('finishedAt')}",
        f"- backup used: {_backup_line(result)}",
    ]
    failure = _failure_line(result)
    if failure:
        lines.append(f"- **failure: {failure}**")
    lines += ["", "| objective | target | measured | |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in _objective_rows(result)]
    extras = _extras(result)
    if extras:
        lines += ["", "| also measured | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in extras]
    if result.get("checks"):
        lines += ["", "| check | result | detail |", "|---|---|---|"]
        lines += [f"| {c['name']} | {'pass' if c['passed'] else 'FAIL'} | {c.get('detail', '')} |"
                  for c in result["checks"]]
    lines += ["", "| # | step | start (+s) | duration | status | detail |", "|---|---|---|---|---|---|"]
    for i, s in enumerate(result.get("steps", []), 1):
        detail = str(s.get("detail", "")).replace("|", "\\|")
        lines.append(f"| {i} | {s['name']} | {s['offset_seconds']:.3f} | {s['seconds']:.3f} s | {s['status']} | {detail} |")
    for note in result.get("notes", []):
        lines.append(f"\n> {note}")
    return "\n".join(lines) + "\n"


def _backup_line(result: dict[str, Any]) -> str:
    backup = result.get("backup")
    if not backup:
        return "none (this scenario recovers from the streaming standby)"
    return f"`{backup.get('id')}` taken {backup.get('takenAt', '?')} ({backup.get('tier', '?')})"


def page(result: dict[str, Any]) -> str:
    e = html.escape
    steps = result.get("steps", [])
    total = max([s["offset_seconds"] + s["seconds"] for s in steps] or [1.0]) or 1.0
    bars = []
    for s in steps:
        left = 100.0 * s["offset_seconds"] / total
        width = max(0.4, 100.0 * s["seconds"] / total)
        bars.append(
            f'<tr><td class="n">{e(s["name"])}</td><td class="t"><div class="bar" style="margin-left:{left:.2f}%;'
            f'width:{width:.2f}%;background:{_COLOURS.get(s["status"], "#555")}" title="{e(s.get("detail", ""))}">'
            f'</div></td><td>+{s["offset_seconds"]:.2f}</td><td>{s["seconds"]:.3f} s</td>'
            f'<td>{e(s["status"])}</td><td>{e(str(s.get("detail", "")))}</td></tr>')
    objectives = "".join(f"<tr><td>{a}</td><td>{b}</td><td>{c}</td><td>{d}</td></tr>"
                         for a, b, c, d in _objective_rows(result))
    checks = "".join(f"<tr><td>{e(c['name'])}</td><td>{'pass' if c['passed'] else 'FAIL'}</td>"
                     f"<td>{e(str(c.get('detail', '')))}</td></tr>" for c in result.get("checks", []))
    extras = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _extras(result))
    failure = _failure_line(result)
    verdict_colour = "#2e7d32" if result["verdict"] == "PASS" else "#c62828"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drill {e(result['scenario'])} {e(result['verdict'])}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}}
.verdict{{color:#fff;background:{verdict_colour};padding:2px 10px;border-radius:4px}}
td.t{{width:25%;min-width:200px}} td{{white-space:nowrap}} td:last-child{{white-space:normal;overflow-wrap:anywhere}} .bar{{height:14px;border-radius:2px}} td.n{{white-space:nowrap}}
.fail{{background:#ffebee;border-left:4px solid #c62828;padding:8px}}
</style></head><body>
<h1>Drill: {e(result['scenario'])} <span class="verdict">{e(result['verdict'])}</span></h1>
<p>Stack <code>{e(result['stack'])}</code>, database <code>{e(result['database'])}</code>;
started {e(result['startedAt'])}, finished {e(str(result.get('finishedAt')))}.<br>
Backup used: {e(_backup_line(result))}</p>
{f'<p class="fail">{e(failure)}</p>' if failure else ''}
<h2>Objectives</h2>
<table><tr><th>objective</th><th>target</th><th>measured</th><th></th></tr>{objectives}</table>
{f'<h2>Also measured</h2><table>{extras}</table>' if extras else ''}
{f'<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>detail</th></tr>{checks}</table>' if checks else ''}
<h2>Timeline</h2>
<table><tr><th>step</th><th>0 … {total:.1f} s</th><th>start</th><th>duration</th><th>status</th><th>detail</th></tr>
{''.join(bars)}</table>
{''.join(f'<p><em>{e(n)}</em></p>' for n in result.get('notes', []))}
</body></html>
"""
