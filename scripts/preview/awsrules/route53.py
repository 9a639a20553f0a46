"""Route 53 rules the mock runtime enforces; each cites where AWS or the provider states it."""
from __future__ import annotations

from scripts.preview.awsrules import Resource, resource_rule, stack_rule, transition_rule  # noqa: F401
