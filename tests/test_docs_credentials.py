"""Documented tool credentials must work on AWS (issue 10, item 7)."""
from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAINED = ("credential_source", "source_profile")  # the role is assumed with another role's credentials


def ini_blocks():
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```ini\n(.*?)```", doc.read_text(), re.S):
            yield doc.name, block


def test_no_documented_profile_asks_a_chained_role_for_more_than_an_hour():
    """Role chaining (credential_source / source_profile -> role_arn) is capped at 3600 s by STS."""
    seen = 0
    for name, block in ini_blocks():
        parser = configparser.ConfigParser()
        parser.read_string(block)
        for section in parser.sections():
            profile = parser[section]
            if "role_arn" in profile and any(k in profile for k in CHAINED):
                seen += 1
                assert int(profile.get("duration_seconds", "3600")) <= 3600, f"{name} [{section}]"
    assert seen, "the tool credentials are documented as AWS config profiles"
