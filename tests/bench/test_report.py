"""bench.report: the parallel-restore model and the issue-15 targets, from a results file of `make bench`'s shape."""
from __future__ import annotations

import json
from pathlib import Path

from bench import report

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results.json"


def _results() -> dict:
    results = json.loads(RESULTS.read_text())
    for scale, s in results["scales"].items():
        s["restore_profile"] = {"load_s": 1.0, "post_data_j1_s": 2.0, "entries": 3, "entry_s": [1.5, 0.3, 0.2],
                                "largest": [["CONSTRAINT public.a a_pkey", 1.5]]}
        s["restore"]["pilotlight"]["median_s"] = 5.0
    return results


def test_makespan_is_longest_first_list_scheduling():
    assert report.makespan([5, 1, 1, 1], 2) == 5
    assert report.makespan([3, 3, 2, 2, 2], 2) == 7
    assert report.makespan([1, 1, 1, 1], 16) == 1
    assert report.makespan([], 4) == 0


def test_model_floors_at_the_largest_build_and_the_serial_part():
    results = _results()
    report.derive(results)
    model = next(iter(results["scales"].values()))["parallel_model"]
    assert model["serial_s"] == 3.0
    assert model["jobs"] == {"1": 5.0, "2": 4.5, "8": 4.5, "16": 4.5}


def test_targets_follow_issue_15_and_the_doc_shows_the_model():
    results = _results()
    report.derive(results)
    names = [t["target"] for t in results["targets"]]
    assert "scale 10: backup ≤ 1.5× its limit" in names and "scale 50: restore ≤ 1.15× its limit" in names
    assert "scale 50: restore --jobs 2 ≤ 1.0× its limit" in names
    assert any(n.startswith("restore peak RSS flat with size") for n in names)
    doc = report.markdown(results)
    assert "## Parallel restore: measured -j1/-j2 and the model for larger N" in doc and "| -j16 s |" in doc
