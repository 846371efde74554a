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


def _served_schema(api_client, user) -> dict:
    api_client.force_authenticate(user)
    response = api_client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


@pytest.mark.django_db
def test_a_created_quantum_job_links_to_its_detail_and_cancel(api_client, viewer_user):
    paths = _served_schema(api_client, viewer_user)["paths"]
    retrieve = paths["/api/v1/quantum/jobs/{id}/"]["get"]["operationId"]
    cancel = paths["/api/v1/quantum/jobs/{id}/cancel/"]["post"]["operationId"]
    links = paths["/api/v1/quantum/jobs/"]["post"]["responses"]["201"]["links"]
    assert links[retrieve] == {"operationId": retrieve, "parameters": {"id": "$response.body#/id"}}
    assert links[cancel] == {"operationId": cancel, "parameters": {"id": "$response.body#/id"}}
    batch_links = paths["/api/v1/quantum/jobs/batch/"]["post"]["responses"]["201"]["links"]
    assert batch_links[retrieve]["parameters"] == {"id": "$response.body#/ids/0"}


@pytest.mark.django_db
def test_every_link_fills_exactly_the_path_parameters_of_an_existing_operation(api_client, viewer_user):
    paths = _served_schema(api_client, viewer_user)["paths"]
    path_parameters = {
        operation["operationId"]: {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        for item in paths.values()
        for operation in item.values()
    }
    links = [
        link
        for item in paths.values()
        for operation in item.values()
        for response in operation["responses"].values()
        for link in response.get("links", {}).values()
    ]
    assert len(links) >= 20
    for link in links:
        assert set(link["parameters"]) == path_parameters[link["operationId"]], link
