"""Fixtures shared by the audit tests."""

import pytest

from tests.audit.collectors import SyslogListener


@pytest.fixture
def listener():
    """A real syslog collector over TCP on a free local port, stopped after the test."""
    started = SyslogListener().start()
    yield started
    started.stop()
