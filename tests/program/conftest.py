"""Program-test fixtures: the example stack evaluated under mocks, before and after failover.

Evaluated once per module; each run installs fresh mocks, so runs never share state.
"""
import pytest
from scripts.preview.runtime import run_stack
from stack_values import config as stack_config


def pytest_configure(config):
    # pulumi_aws warns about its own deprecated classes when its modules are imported; not ours to fix.
    config.addinivalue_line("filterwarnings", "ignore:.*has been deprecated in favor of:DeprecationWarning:pulumi_aws.*")


@pytest.fixture(scope="module")
def example():
    """The example stack (Pulumi.dr.yaml), active = primary."""
    return run_stack(stack_config())


@pytest.fixture(scope="module")
def failed_over():
    """The same stack after `pulumi config set pilotlight:active dr`."""
    return run_stack(stack_config(active="dr"))
