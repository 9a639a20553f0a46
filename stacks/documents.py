"""Config -> the plain values components/rules.py builds documents from.

The one translation of :class:`stacks.config.VaultConfig` into :class:`components.rules.VaultRules`,
used by the program (stacks/dr.py) and the sandbox (scripts/sandbox/emulator.py) alike, so the
components never import config types and both apply the very same documents.
"""
from __future__ import annotations

from components.rules import TierLifecycle, VaultRules
from stacks.config import StackConfig


def vault_rules(cfg: StackConfig) -> VaultRules:
    v = cfg.vault
    return VaultRules(
        tiers=tuple(TierLifecycle(t.name, t.prefix, t.retention_days, t.noncurrent_days, t.archive_after_days,
                                  t.archive_class) for t in v.tiers.values()),
        infrequent_access_after_days=v.infrequent_access_after_days,
        abort_multipart_days=v.abort_multipart_days,
        object_lock_mode=v.object_lock_mode,
        object_lock_days=v.object_lock_days,
    )
