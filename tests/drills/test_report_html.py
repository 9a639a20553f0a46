"""Drill reports people can read: structure checked by parsing the HTML (no services needed)."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path

from scripts import version
from scripts.drills import report
from scripts.commands import status
from scripts.contract import parse
from scripts.drills.projection import projected_rto

FIXTURE = Path(__file__).parent.parent / "fixtures" / "outputs.json"
CONTRACT = parse(json.loads(FIXTURE.read_text()))


class Tree(HTMLParser):
    """Every start tag with its attributes, and the visible text."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []
        self._skip = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._skip += tag in ("style", "title")

    def handle_endtag(self, tag):
        self._skip -= tag in ("style", "title") and self._skip > 0

    def handle_data(self, data):
        if not self._skip:
            self.text.append(data)

    def find(self, tag: str, **attrs) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


def step(name, offset, seconds, status="ok", detail=""):
    return {"name": name, "startedAt": "2026-11-24T03:00:00.000000Z", "offsetSeconds": offset, "seconds": seconds,
            "status": status, "detail": detail}


def outage_result(sandbox: bool = True, verdict: str = "PASS") -> dict:
    measured = {"rtoSeconds": 1.7, "rpoSeconds": 0.0, "detectionSeconds": 1.2, "lostAcknowledgedRows": 0,
                "heartbeatGapSeconds": 1.69, "failureAt": 1764000000.0,
                "heartbeat": {"acknowledged": 30, "bySide": {"primary": 20, "dr": 10}, "failedAttempts": 4,
                              "commits": {"primary": [round(0.5 + i / 10, 3) for i in range(20)],
                                          "dr": [round(4.2 + i / 10, 3) for i in range(10)]}}}
    return {"scenario": "regional-outage", "stack": "dr", "database": "orders", "sandbox": sandbox,
            "target": "sandbox" if sandbox else "stack dr", "operator": "ops@host",
            "pilotlight": version.info(), "verdict": verdict,
            "startedAt": "2026-11-24T03:00:00.000000Z", "finishedAt": "2026-11-24T03:00:14.000000Z", "wallSeconds": 14400.0,
            "objective": {"rtoSeconds": 900, "rpoSeconds": 60}, "measured": measured,
            "projectedRto": projected_rto(CONTRACT, "regional-outage", measured, None),
            "checks": [{"name": "dns answers dr everywhere", "passed": True, "detail": "ns -> dr"},
                       {"name": "every acknowledged row is on dr", "passed": False, "detail": "2 lost"}],
            "backup": None, "error": None, "failedStep": None, "notes": ["run `pulumi up` after"],
            "steps": [step("heartbeat baseline", 0.4, 2.0), step("inject failure", 2.5, 0.05),
                      step("cutover: promote dr", 3.0, 0.4),
                      step("cutover: change dns records", 3.4, 0.3, "warning", "Route53 control plane unavailable"),
                      step("service restored through dns", 4.2, 0.0)]}


def test_the_report_says_what_it_ran_against_with_version_operator_and_times(tmp_path):
    paths = report.write(outage_result(), tmp_path)
    tree = Tree(Path(paths["html"]).read_text())
    banner = [a for t, a in tree.tags if t == "div" and "banner" in a.get("class", "")]
    assert banner and "sandbox" in banner[0]["class"]
    text = tree.visible
    assert text.startswith("SANDBOX pilotlight ") and f"(commit {version.commit()})" in text
    assert "operator ops@host" in text and "started 2026-11-24T03:00:00" in text and "finished 2026-11-24T03:00:14" in text
    real = Tree(page_of(outage_result(sandbox=False), tmp_path / "real"))
    assert real.visible.startswith("REAL STACK DR")
    md = Path(paths["md"]).read_text()
    assert "**SANDBOX**" in md and "operator: ops@host" in md and version.commit() in md
    assert json.loads(Path(paths["json"]).read_text())["pilotlight"]["commit"] == version.commit()


def page_of(result: dict, directory: Path) -> str:
    return Path(report.write(result, directory)["html"]).read_text()


def test_the_projected_rto_on_aws_comes_from_the_stacks_own_figures(tmp_path):
    result = outage_result()
    # the stack's detection (its DATABASE signal alarm: 3 one-minute periods) + TTL + promotion budget
    assert result["projectedRto"]["seconds"] == 180 + 30 + 300
    text = Tree(page_of(result, tmp_path)).visible
    assert "RTO 15 min 1.7 s 8 min 30 s met" in text
    assert "health-check detection 3 min + DNS TTL 30 s + promotion budget 5 min" in text


def test_the_picture_shows_commits_by_side_the_marks_and_the_rto_window(tmp_path):
    tree = Tree(page_of(outage_result(), tmp_path))
    assert len(tree.find("svg")) == 1
    sides = {a["data-side"]: a for a in tree.find("path") if "data-side" in a}
    assert set(sides) == {"primary", "dr"} and sides["primary"]["stroke"] != sides["dr"]["stroke"]
    assert sides["primary"]["d"].count("M") == 20 and sides["dr"]["d"].count("M") == 10
    assert {a["data-mark"] for a in tree.find("line") if "data-mark" in a} == {"failure", "detection", "promotion", "recovered"}
    (window,) = tree.find("rect", **{"class": "rto-window"})
    assert float(window["width"]) > 0
    assert "first commit on dr +4.2 s" in tree.visible and "RTO window 1.7 s" in tree.visible


def test_failed_and_warning_rows_are_coloured_durations_have_units_labels_are_readable(tmp_path):
    html_text = page_of(outage_result(verdict="FAIL"), tmp_path)
    tree = Tree(html_text)
    classes = [a.get("class") for a in tree.find("tr")]
    assert "failed" in classes and "warning" in classes
    text = tree.visible
    assert "(4 h)" in text and "14400.000" not in text  # wall time 14400 s reads as 4 h
    assert "acknowledged rows lost" in text and "lostAcknowledgedRows" not in text
    assert "`" not in text and "<code>pulumi up</code>" in html_text
    assert not [a for t, a in tree.tags if any(str(v).startswith(("http:", "https:", "//")) for k, v in a.items()
                                                if k in ("src", "href"))]
    assert not tree.find("script") and not tree.find("link") and not tree.find("img")


def test_reports_link_each_other_the_runbook_and_an_index_of_every_drill(tmp_path):
    first = report.write(outage_result(), tmp_path, runbook_html="<html>runbook</html>")
    later = outage_result(verdict="FAIL") | {"startedAt": "2026-11-25T03:00:00.000000Z"}
    second = report.write(later, tmp_path)
    stem = Path(first["html"]).stem
    hrefs = {a["href"] for a in Tree(Path(first["html"]).read_text()).find("a")}
    assert {f"{stem}.md", f"{stem}.json", "index.html", "runbook.html"} <= hrefs
    md = Path(first["md"]).read_text()
    assert f"]({stem}.html)" in md and "](index.html)" in md and "](runbook.html)" in md
    assert json.loads(Path(first["json"]).read_text())["links"]["html"] == f"{stem}.html"
    assert (tmp_path / "runbook.html").read_text() == "<html>runbook</html>"
    index = Tree((tmp_path / "index.html").read_text())
    rows = [a for a in index.find("tr")]
    assert Path(second["index"]) == tmp_path / "index.html"
    links = [a["href"] for a in index.find("a") if a["href"].endswith(".html")]
    assert links == ["runbook.html", f"{Path(second['html']).name}", f"{stem}.html"]  # newest first
    assert "FAIL" in index.visible and "PASS" in index.visible and len(rows) == 3
    assert "failed" in [a.get("class") for a in rows]


def test_status_counts_only_drills_of_the_stack_it_looks_at(tmp_path):
    report.write(outage_result(sandbox=True), tmp_path)  # a sandbox drill of a stack also named dr
    now = datetime(2026, 11, 26, tzinfo=timezone.utc)
    (line,) = status.drill_lines(tmp_path, now, CONTRACT)  # CONTRACT is the real stack dr
    assert line.state == status.WARN and line.value == "never"
    assert "no drill of stack dr" in line.detail and "1 report(s) of other stacks or the sandbox ignored" in line.detail
    report.write(outage_result(sandbox=False) | {"startedAt": "2026-11-25T03:00:00.000000Z"}, tmp_path)
    (line,) = status.drill_lines(tmp_path, now, CONTRACT)
    assert line.subject == "regional-outage" and line.value == "PASS"
