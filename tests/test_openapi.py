"""The OpenAPI schema validates and is served to signed-in users only."""

import pytest
import yaml
from django.core.management import call_command


def test_schema_validates_without_warnings(tmp_path):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    schema = yaml.safe_load(target.read_text())
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/core/maintenance-runs/" in schema["paths"]
    assert "/api/v1/accounts/me/" in schema["paths"]


@pytest.mark.django_db
def test_schema_requires_sign_in(api_client, viewer_user):
    assert api_client.get("/api/v1/schema/").status_code == 401
    api_client.force_authenticate(viewer_user)
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Opsdeck API"
