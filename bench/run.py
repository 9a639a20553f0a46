"""`make bench`: backup and restore against their own limits, the runbooks' recipe and pgBackRest;
the drill's RTO/RPO; program evaluation time. Writes bench/results.json and docs/benchmarks.md.

    python -m bench.run [--scales 10,50,200] [--repeat 3] [--once 200] [--skip pgbackrest,drill,program]

Environment (flags win): BENCH_SCALES, BENCH_REPEAT, BENCH_ONCE (scales measured once, without the
peers: they show that time grows linearly and memory does not), BENCH_ENTROPY_ROWS (events rows per pgbench
scale unit, default 10000 ≈ 5 MiB), BENCH_VARIANT_ROOT (another source tree of Pilotlight, e.g. with
a proposed patch, measured side by side as ``pilotlight_variant``), BENCH_PROGRAM_DBS (default 1,10,50), BENCH_SKIP. A quick run:
``BENCH_SCALES=1 BENCH_REPEAT=2 BENCH_SKIP=drill python -m bench.run --out bench/work/quick.json``.

Each method runs ``repeat`` times, interleaved (round r of every method before round r+1), so
a change in machine load hits every method alike; the median and the spread are reported.
Exit 0 when everything was measured (a missed target is a MISS line, not a crash); 1 when a
measurement failed; 2 on bad arguments.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench import dataset, drill, machine, methods, program, report, startup
from bench.measure import Failed, Run, run_process, summary
from bench.pgbackrest import PgBackRest
from bench.sandbox import bench_sandbox
from scripts.common import iso, utcnow

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "bench" / "work"
PARTS = ("backup", "restore", "pgbackrest", "drill", "program")


def _ints(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _parts(text: str) -> set[str]:
    parts = {x.strip() for x in text.split(",") if x.strip()}
    if parts - set(PARTS):
        raise argparse.ArgumentTypeError(f"unknown part(s) {', '.join(sorted(parts - set(PARTS)))}; one of {', '.join(PARTS)}")
    return parts


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--scales", type=_ints, default=_ints(env("BENCH_SCALES", "10,50,200")), help="pgbench -s values")
    parser.add_argument("--repeat", type=int, default=int(env("BENCH_REPEAT", "3")), help="runs per method")
    parser.add_argument("--once", type=_ints, default=_ints(env("BENCH_ONCE", "200")),
                        help="scales measured once, without the runbooks' recipe and pgBackRest")
    parser.add_argument("--entropy-rows", type=int, default=int(env("BENCH_ENTROPY_ROWS", "10000")),
                        help="events rows per scale unit")
    parser.add_argument("--program-dbs", type=_ints, default=_ints(env("BENCH_PROGRAM_DBS", "1,10,50")))
    parser.add_argument("--skip", type=_parts, default=_parts(env("BENCH_SKIP", "")), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results.json")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md",
                        help="Markdown table (default docs/benchmarks.md; '-' for none)")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.entropy_rows < 0:
        parser.error("--repeat must be >= 1 and --entropy-rows >= 0")
    return args


class Collector:
    """Runs of every method, and the failures (one line each) that did not stop the benchmark."""

    def __init__(self) -> None:
        self.runs: dict[str, list[Run]] = {}
        self.errors: list[str] = []

    def measure(self, label: str, fn) -> None:
        try:
            run = fn()
        except (Failed, Exception) as exc:  # noqa: BLE001 - reported, the other methods still run
            line = f"{label}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            print(f"  FAILED {line}", flush=True)
            self.errors.append(line)
            return
        self.runs.setdefault(label, []).append(run)
        rss = f"  peak RSS {run.rss_mib:.0f} MiB" if run.rss_mib else ""
        print(f"  {label:<28} {run.seconds:8.2f} s{rss}", flush=True)

    def summaries(self, prefix: str) -> dict:
        return {k[len(prefix):]: summary(v) for k, v in self.runs.items() if k.startswith(prefix)}


def measure_scale(bench, scale: int, args, pgbr: PgBackRest | None, skip: set[str]) -> dict:
    name = f"bench_s{scale}"
    admin = bench.dsn("postgres")
    print(f"\nscale {scale}: creating {name} (pgbench -i -s {scale} + {scale * args.entropy_rows} events rows)", flush=True)
    t0 = time.perf_counter()
    info = dataset.create(admin, name, bench.pg_env(), scale, scale * args.entropy_rows)
    info["create_s"] = round(time.perf_counter() - t0, 1)
    print(f"  {info['database_mib']} MiB ({info['events_mib']} MiB events) in {info['create_s']} s", flush=True)
    work = WORK / name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    scene = methods.Scene(bench, name, work)
    col = Collector()
    once = scale in args.once
    repeat = 1 if once else args.repeat
    pgbr = None if once else pgbr
    backup_methods = {k: v for k, v in methods.BACKUP.items() if not (once and k in methods.PEERS)}
    model = None
    try:
        if "backup" not in skip:
            for r in range(repeat):
                print(f" backup round {r + 1}/{repeat}", flush=True)
                for label, fn in backup_methods.items():
                    col.measure(f"backup.{label}", lambda fn=fn: fn(scene))
                if pgbr is not None:
                    col.measure("backup.pgbackrest_full_zstd", pgbr.backup)
        if pgbr is not None and "backup.pgbackrest_full_zstd" in col.runs:
            scene.sizes["pgbackrest"] = pgbr.stored_bytes()
        if "restore" not in skip:
            if scene.backup_id is None:
                col.measure("backup.pilotlight", lambda: methods.pilotlight_backup(scene))
            methods.plain_dump(scene)
            try:
                model = methods.post_data_profile(scene)
                print(f"  post-data profile: data {model['load_s']:.2f} s, post-data -j1 {model['post_data_j1_s']:.2f} s "
                      f"({model['entries']} entries)", flush=True)
            except (methods.Failed, OSError, subprocess.SubprocessError) as exc:
                col.errors.append(f"post-data profile: {exc}")
            for r in range(repeat):
                print(f" restore round {r + 1}/{repeat}", flush=True)
                for label, fn in methods.RESTORE.items():
                    col.measure(f"restore.{label}", lambda fn=fn: fn(scene))
                if pgbr is not None and "backup.pgbackrest_full_zstd" in col.runs:
                    col.measure("restore.pgbackrest_empty_datadir", lambda: pgbr.restore(work / "pgbr-restore"))
        scene.sizes["plain_dump_z0"] = scene.dump_bytes or (methods.plain_dump(scene).stat().st_size)
    finally:
        dataset.drop(admin, name)
        shutil.rmtree(work, ignore_errors=True)
    return {"dataset": info, "repeat": repeat, "backup": col.summaries("backup."), "restore": col.summaries("restore."),
            "restore_profile": model, "stored_bytes": scene.sizes, "errors": col.errors}


def tool_startup() -> dict:
    """What every Pilotlight command pays before its first byte: interpreter start and imports."""
    runs = [run_process([sys.executable, "-c", "import scripts.vault.backup, scripts.vault.restore"],
                        env={**os.environ, "PYTHONPATH": str(ROOT)})[0] for _ in range(3)]
    return summary(runs)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    skip = set(args.skip)
    started = utcnow()
    results: dict = {"started": iso(started), "config": {"scales": args.scales, "repeat": args.repeat, "once": args.once,
                     "entropy_rows_per_scale": args.entropy_rows, "program_dbs": args.program_dbs,
                     "skipped": sorted(skip),
                     "variant_root": str(methods.VARIANT_ROOT) if methods.VARIANT_ROOT else None},
                     "machine": machine.describe(), "load_average": {"start": machine.load_average()},
                     "notes": [], "errors": []}
    print(f"bench: scales {args.scales}, {args.repeat} runs each, load average {results['load_average']['start']}")
    results["tool_startup"] = tool_startup()
    if "program" not in skip:
        print("\nprogram evaluation under mocks", flush=True)
        results["program"] = []
        for count in args.program_dbs:
            try:
                doc = program.measure(count, args.repeat)
            except RuntimeError as exc:
                results["errors"].append(f"program {count} databases: {exc}")
                continue
            doc.update(summary([Run(s) for s in doc.pop("runs_s")]))
            results["program"].append(doc)
            print(f"  {count:>3} databases, {doc['resources']} resources: {doc['median_s']:.2f} s", flush=True)
    if {"backup", "restore"} - skip:
        results["scales"] = {}
        with bench_sandbox() as bench:
            print("\nCLI start-up", flush=True)
            results["startup"] = startup.measure(bench.outputs, args.repeat * 3)
            methods.stop_replication(bench)
            results["notes"].append("the sandbox's emulated S3 replication was switched off for the run (see "
                                    "bench.methods.stop_replication); restores read the primary vault")
            pgbr = None
            if "pgbackrest" not in skip:
                why = PgBackRest.available()
                if why:
                    results["notes"].append(f"SKIP pgBackRest: {why}")
                    print(f"SKIP pgBackRest: {why}")
                else:
                    pgbr = PgBackRest(bench, WORK / "pgbackrest")
                    try:
                        pgbr.setup()
                    except Exception as exc:  # noqa: BLE001 - the peer is skipped, the rest still runs
                        line = f"SKIP pgBackRest: setup failed: {str(exc).splitlines()[0]}"
                        results["notes"].append(line)
                        print(line)
                        pgbr = None
            try:
                for scale in args.scales:
                    try:
                        out = measure_scale(bench, scale, args, pgbr, skip)
                    except Exception as exc:  # noqa: BLE001 - e.g. the sandbox died: report it, keep the rest
                        line = f"scale {scale}: aborted: {(str(exc).splitlines() or [type(exc).__name__])[0]}"
                        print(f"  FAILED {line}", flush=True)
                        results["errors"].append(line)
                        continue
                    results["errors"] += [f"scale {scale}: {e}" for e in out.pop("errors")]
                    results["scales"][str(scale)] = out
            finally:
                if pgbr is not None:
                    pgbr.teardown()
    if "drill" not in skip:
        print("\nmake drill (regional-outage)", flush=True)
        try:
            results["drill"] = drill.measure()
            d = results["drill"]
            print(f"  {d['verdict']}: RTO {d['rto_s']} s, RPO {d['rpo_s']} s, drill {d['drill_wall_s']} s", flush=True)
        except (RuntimeError, OSError) as exc:
            results["errors"].append(f"drill: {exc}")
    results["load_average"]["end"] = machine.load_average()
    results["finished"] = iso(utcnow())
    report.derive(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    markdown = report.markdown(results)
    if str(args.doc) != "-":
        args.doc.parent.mkdir(parents=True, exist_ok=True)
        args.doc.write_text(markdown)
    print("\n" + report.verdict_lines(results))
    print(f"\nresults: {args.out}" + ("" if str(args.doc) == "-" else f"; table: {args.doc}"))
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
