"""Pilotlight DR stack entry point: load the config, build the stack. Nothing else."""
import pulumi

from stacks.config import ConfigError, from_pulumi
from stacks.dr import build

try:
    build(from_pulumi())
except ConfigError as exc:
    # RunError ends the preview with just this line, no Python traceback.
    raise pulumi.RunError(str(exc)) from None
