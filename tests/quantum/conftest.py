"""Quantum jobs that run on a real worker do so on each broker: Redis and RabbitMQ."""

import pytest


@pytest.fixture
def broker(each_broker):
    return each_broker
