import pytest

from apps.readonly.services import maintenance_mode_forget_cached


@pytest.fixture(autouse=True)
def _fresh_maintenance_state():
    """Each test reads maintenance mode from its own database, not from the per-process cache of an earlier one."""
    maintenance_mode_forget_cached()
    yield
    maintenance_mode_forget_cached()
