"""One vocabulary (stacks/vocabulary.py): each word defined once, and the copies that must exist still agree.

The policy pack runs standalone (``pulumi preview --policy-pack stacks/policy``) and cannot import
the vocabulary; components import nothing from ``stacks/`` and still carry their own ``SIDES``
until they take the sides from ``stacks/dr.py`` (branches aws-rds, aws-vault). Those copies are
listed here and must equal the vocabulary; any other module defining one of the words fails.
"""
from __future__ import annotations

import ast
from pathlib import Path

from components import alarms, audit, dns, rules, vault
from scripts.drills import scenarios
from stacks import config, vocabulary
from stacks.policy import policies

ROOT = Path(__file__).resolve().parents[1]
WORDS = {name: getattr(vocabulary, name) for name in ("SIDES", "TIERS", "SCENARIOS", "FAILOVER_SCENARIOS",
                                                      "BACKUP_SCENARIOS", "CONTRACT_VERSION", "RTC_MINUTES",
                                                      "METRIC_NAMESPACE", "BACKUP_AGE_METRIC")}
KNOWN_COPIES = {
    ("components/alarms.py", "SIDES"), ("components/audit.py", "SIDES"), ("components/dns.py", "SIDES"),
    ("components/vault.py", "SIDES"),
    ("components/rules.py", "RTC_MINUTES"), ("stacks/policy/policies.py", "SCENARIOS"),
    ("stacks/policy/policies.py", "RTC_MINUTES"),
}


def _definitions() -> set[tuple[str, str]]:
    """(module, word) for every module-level assignment of a vocabulary word's name outside the vocabulary."""
    found = set()
    for folder in ("scripts", "stacks", "components"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            if rel == "stacks/vocabulary.py":
                continue
            for node in ast.parse(path.read_text()).body:
                targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
                found.update((rel, t.id) for t in targets if isinstance(t, ast.Name) and t.id in WORDS)
    return found


def test_each_word_is_defined_once():
    extra = sorted(_definitions() - KNOWN_COPIES)
    assert not extra, f"defined outside stacks/vocabulary.py: {extra}; import it from there instead"
    gone = sorted(KNOWN_COPIES - _definitions())
    assert not gone, f"no longer copies: {gone}; take them off KNOWN_COPIES"


def test_the_copies_agree_with_the_vocabulary():
    assert alarms.SIDES == audit.SIDES == dns.SIDES == vault.SIDES == vocabulary.SIDES
    assert rules.RTC_MINUTES == policies.RTC_MINUTES == vocabulary.RTC_MINUTES
    assert policies.SCENARIOS == vocabulary.SCENARIOS


def test_config_and_drills_speak_the_vocabulary():
    assert set(config.SCENARIO_KEYS.values()) == set(vocabulary.SCENARIOS)
    assert tuple(config.TIER_INTERVALS) == vocabulary.TIERS == tuple(config.DEFAULT_RETENTION_DAYS)
    assert set(scenarios.MODULES) <= set(vocabulary.SCENARIOS)
    assert set(vocabulary.BACKUP_SCENARIOS) | set(vocabulary.FAILOVER_SCENARIOS) == set(vocabulary.SCENARIOS)
    assert vocabulary.BACKUP_SCENARIOS == tuple(s for s in vocabulary.SCENARIOS if s in vocabulary.BACKUP_SCENARIOS)
