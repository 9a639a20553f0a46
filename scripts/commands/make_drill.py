"""`make drill`: a whole game day on the local sandbox, from nothing, in one command.

Brings a sandbox up in its own state directory (``.pilotlight/drill``, so a sandbox you are
working with is never touched), runs the chosen drills against it, prints a results table and
where the reports are, and ALWAYS brings that sandbox down again — also on failure or Ctrl-C.
Exit status: 0 when every drill passed, 1 when one failed, like ``pilotlight drill``.

    python -m scripts.commands.make_drill --scenarios regional-outage|all|a,b --report reports
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from scripts.common import Exit
from scripts.contract import load_file
from scripts.drills.engine import ALL, run_drill, verdict_line
from scripts.commands import sandbox as sandbox_cli

STATE_DIR = Path(".pilotlight/drill")


def scenario_list(text: str) -> list[str]:
    names = list(ALL) if text == "all" else [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in ALL]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown scenario {', '.join(unknown) or text!r}; use all or {', '.join(ALL)}")
    return names


def table(results: list[dict]) -> Table:
    """Measured against the stack's objectives; narrow enough for an 80-column terminal."""
    out = Table(title="Pilotlight drills on the local sandbox")
    for col in ("scenario", "verdict", "RTO measured / objective", "RPO measured / objective", "wall time"):
        out.add_column(col)
    for r in results:
        m, o = r["measured"], r["objective"]
        colour = "green" if r["verdict"] == "PASS" else "red"
        measured = {k: "—" if m.get(k) is None else f"{m[k]:.3f} s" for k in ("rtoSeconds", "rpoSeconds")}
        out.add_row(r["scenario"], f"[{colour}]{r['verdict']}[/{colour}]",
                    f"{measured['rtoSeconds']} / {o['rtoSeconds']:.0f} s",
                    f"{measured['rpoSeconds']} / {o['rpoSeconds']:.0f} s", f"{r['wallSeconds']:.1f} s")
    return out


def write_summary(results: list[dict], directory: Path, wall: float) -> dict:
    """``DIR/make-drill.json``: the figures the benchmark reads (verdicts, RTO/RPO, wall times)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "make-drill.json"
    doc = {"wallSeconds": round(wall, 3), "drills": [
        {k: r.get(k) for k in ("scenario", "verdict", "objective", "wallSeconds", "reports")}
        | {"rtoSeconds": r["measured"].get("rtoSeconds"), "rpoSeconds": r["measured"].get("rpoSeconds")}
        for r in results]}
    path.write_text(json.dumps(doc, indent=2) + "\n")
    return doc | {"path": str(path.absolute())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make drill", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", type=scenario_list, default=["regional-outage"],
                        help="regional-outage (default), all, or a comma-separated list")
    parser.add_argument("--report", type=Path, default=Path("reports"), metavar="DIR")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR, metavar="DIR")
    args = parser.parse_args(argv)
    console = Console()
    if not console.is_terminal:  # piped or captured: room for the whole table
        console = Console(width=100)
    t0 = time.monotonic()
    results: list[dict] = []
    try:
        console.print(f"[bold]sandbox up[/bold] ({args.state_dir})")
        if sandbox_cli.main(["up", "--state-dir", str(args.state_dir), "--seed-rows", "1000"]) != 0:
            console.print("[red]the sandbox did not come up; see the line above[/red]")
            return int(Exit.FAILED)
        outputs = args.state_dir / "outputs.json"
        contract = load_file(outputs)
        for name in args.scenarios:
            console.print(f"\n[bold]drill {name}[/bold]")
            result = run_drill(contract, contract.database(), name, echo=print, outputs=outputs,
                               report_dir=args.report.absolute())
            results.append(result)
            print(verdict_line(result), flush=True)
            contract = load_file(outputs)  # a drill may have recorded a new active side
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]")
        return int(Exit.INTERRUPTED)
    finally:
        console.print(f"\n[bold]sandbox down[/bold] ({args.state_dir})")
        sandbox_cli.main(["down", "--state-dir", str(args.state_dir)])
    console.print(table(results))
    summary = write_summary(results, args.report, time.monotonic() - t0)
    for r in results:
        print(f"report {r['scenario']}: {(r.get('reports') or {}).get('html', '—')} (+ .json, .md)")
    console.print(f"make drill wall time (sandbox up → down): {summary['wallSeconds']:.1f} s; summary: {summary['path']}")
    return int(Exit.OK if results and all(r["verdict"] == "PASS" for r in results) else Exit.FAILED)


if __name__ == "__main__":
    sys.exit(main())
