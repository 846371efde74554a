"""Liveness and readiness probes against the real PostgreSQL and Redis."""

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.backups.choices import BackupStatus
from tests.backups.test_backup_retention import backup_at


def test_liveness_answers_without_database_or_known_host(client):
    response = client.get("/health/live", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.content == b"ok\n"


@pytest.mark.django_db
def test_readiness_is_ok_with_postgres_and_redis_up(client):
    backup_at(timezone.now() - timedelta(hours=1), BackupStatus.VERIFIED)
    response = client.get("/health/ready")
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert set(report["checks"]) == {
        "database", "broker", "channel_layer", "migrations", "disk", "backups", "audit_forwarding", "maintenance"
    }  # fmt: skip
    assert report["checks"]["database"]["detail"] == "postgresql answers"
    assert report["checks"]["broker"]["detail"] == "broker answers"
    assert report["checks"]["channel_layer"]["detail"] == "RedisPubSubChannelLayer round trip"
    assert report["checks"]["audit_forwarding"]["detail"] == "no active audit sinks"
    assert report["checks"]["maintenance"]["detail"] == "off"
    for check in report["checks"].values():
        assert check["ok"] is True
        assert check["latency_ms"] >= 0


@pytest.mark.django_db
def test_readiness_is_degraded_when_disk_is_low(client, settings):
    settings.HEALTH_MIN_FREE_DISK_MB = 10**12
    response = client.get("/health/ready")
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "degraded"
    assert report["checks"]["disk"]["ok"] is False
    assert "below 1,000,000,000,000 MB" in report["checks"]["disk"]["detail"]


@pytest.mark.django_db
def test_readiness_refuses_writes(client):
    assert client.post("/health/ready").status_code == 405
