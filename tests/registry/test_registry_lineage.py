"""Tags and lineage of versions: set by the owner or an admin over the API, validated, shown and audited."""

import io

import pytest
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.core.choices import Role
from apps.registry.services import model_register, version_update, version_upload
from tests.factories import UserFactory
from tests.helpers import api_error
from tests.registry_models import build_tiny_classifier, pack_zip

pytestmark = [pytest.mark.usefixtures("registry_storage"), pytest.mark.django_db]

MODEL_URL = "/api/v1/registry/models/sentiment/"
LINEAGE = {
    "training_dataset": "s3://datasets/tickets/2026-11@sha256:9f2c",
    "source_run_url": "https://mlflow.example.com/#/experiments/3/runs/8d1e",
    "parent_version": 1,
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("lineage") / "model")


@pytest.fixture
def versions(operator_user, folder):
    # Lineage needs no validation: versions are edited whatever their status.
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    return [version_upload(model=model, upload=io.BytesIO(pack_zip(folder)), actor=operator_user) for _ in range(3)]


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_owner_sets_tags_and_lineage_and_everyone_reads_them(operator_user, viewer_user, versions):
    patched = _client(operator_user).patch(
        MODEL_URL + "versions/2/", {"tags": ["nlp", "candidate:q4", "de-DE"], **LINEAGE}, format="json"
    )
    assert patched.status_code == 200, patched.content
    shown = _client(viewer_user).get(MODEL_URL + "versions/2/").json()
    assert (shown["tags"], shown["lineage"]) == (["nlp", "candidate:q4", "de-DE"], LINEAGE)
    listed = _client(viewer_user).get(MODEL_URL).json()["versions"]
    assert [(version["version"], version["lineage"]["parent_version"]) for version in listed] == [
        (3, None),
        (2, 1),
        (1, None),
    ]
    event = AuditEvent.objects.get(action="registry.version.updated")
    assert event.changes["parent"] == [None, 1]
    assert event.changes["tags"] == [[], ["nlp", "candidate:q4", "de-DE"]]
    # Only the keys sent change; null and "" remove.
    cleared = _client(operator_user).patch(
        MODEL_URL + "versions/2/", {"parent_version": None, "source_run_url": ""}, format="json"
    )
    assert cleared.json()["lineage"] == {**LINEAGE, "parent_version": None, "source_run_url": ""}
    assert cleared.json()["tags"] == ["nlp", "candidate:q4", "de-DE"]


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"tags": ["ok", "not ok"]},
            "tags",
            "Tag 'not ok' is not allowed: use 1 to 50 letters, digits, '.', ':', '_' or '-'.",
        ),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags", "At most 10 tags; got 11."),
        ({"tags": "nlp"}, "tags", "tags must be a list of texts."),
        ({"tags": ["a", "a"]}, "tags", "Each tag may appear once."),
        (
            {"source_run_url": "javascript:alert(1)"},
            "source_run_url",
            "source_run_url 'javascript:alert(1)' is not an http(s) URL of at most 500 characters.",
        ),
        ({"parent_version": 2}, "parent_version", "The parent of v2 must be an earlier version of sentiment; got v2."),
        ({"parent_version": 3}, "parent_version", "The parent of v2 must be an earlier version of sentiment; got v3."),
        ({"parent_version": "1"}, "parent_version", "parent_version must be a version number or null."),
        (
            {"training_dataset": "x" * 301},
            "training_dataset",
            "training_dataset must be a printable text of at most 300 characters.",
        ),
        (
            {"status": "ready"},
            "status",
            "Unknown field(s) status; a version's editable fields are tags, training_dataset, source_run_url, "
            "parent_version, input_schema, output_schema.",
        ),
    ],
    ids=[
        "tag-chars",
        "tag-count",
        "tags-not-list",
        "tag-twice",
        "url",
        "parent-self",
        "parent-later",
        "parent-type",
        "dataset-long",
        "unknown-field",
    ],
)
def test_bad_tags_and_lineage_are_refused_naming_the_field(operator_user, versions, body, field, message):
    refused = _client(operator_user).patch(MODEL_URL + "versions/2/", body, format="json")
    assert api_error(refused, 400, "invalid")["errors"] == {field: [message]}
    assert not AuditEvent.objects.filter(action="registry.version.updated").exists()


def test_parent_must_be_of_the_same_model(operator_user, versions, folder):
    other = model_register(owner=operator_user, name="other", task="text-classification")
    version_upload(model=other, upload=io.BytesIO(pack_zip(folder)), actor=operator_user)
    refused = _client(operator_user).patch(
        "/api/v1/registry/models/other/versions/1/", {"parent_version": 1}, format="json"
    )
    assert api_error(refused, 400, "invalid")["errors"] == {
        "parent_version": ["The parent of v1 must be an earlier version of other; got v1."]
    }
    # Version 2 of sentiment names v1 of sentiment, never the other model's v1.
    updated = version_update(version=versions[1], actor=operator_user, changes={"parent_version": 1})
    assert updated.parent == versions[0]


def test_only_the_owner_or_an_admin_edits_a_version(versions, admin_user, viewer_user):
    stranger = UserFactory(username="olga-operator", roles=[Role.OPERATOR])
    assert _client(stranger).patch(MODEL_URL + "versions/1/", {"tags": ["x"]}, format="json").status_code == 403
    assert _client(viewer_user).patch(MODEL_URL + "versions/1/", {"tags": ["x"]}, format="json").status_code == 403
    assert _client(admin_user).patch(MODEL_URL + "versions/1/", {"tags": ["x"]}, format="json").status_code == 200
    assert _client(admin_user).put(MODEL_URL + "versions/1/", {"tags": ["x"]}, format="json").status_code == 405


# --- In the admin


def _admin_form(version, **fields) -> dict:
    form = {
        "tags_text": "",
        "training_dataset": "",
        "source_run_url": "",
        "parent_number": "",
        "input_schema_text": "",
        "output_schema_text": "",
    }
    return form | fields


def test_admin_edits_tags_lineage_and_signature_through_the_service(admin_client, versions):
    url = f"/admin/registry/modelversion/{versions[1].pk}/change/"
    saved = admin_client.post(
        url,
        _admin_form(
            versions[1],
            tags_text="nlp, candidate",
            training_dataset="tickets-2026-11",
            source_run_url="https://runs.example.com/8d1e",
            parent_number="1",
            input_schema_text='{"type": "string", "maxLength": 500}',
        ),
    )
    assert saved.status_code == 302, saved.content.decode()[-2000:]
    versions[1].refresh_from_db()
    assert (versions[1].tags, versions[1].training_dataset, versions[1].parent, versions[1].input_schema) == (
        ["nlp", "candidate"],
        "tickets-2026-11",
        versions[0],
        {"type": "string", "maxLength": 500},
    )
    assert AuditEvent.objects.filter(action="registry.version.updated", object_id=str(versions[1].pk)).exists()
    shown = admin_client.get(url).content.decode()
    assert "tickets-2026-11" in shown
    assert "nlp, candidate" in shown

    not_json = admin_client.post(url, _admin_form(versions[1], output_schema_text="{type: string"))
    assert (
        "Not JSON: Expecting property name enclosed in double quotes at line 1, column 2." in not_json.content.decode()
    )
    refused = admin_client.post(url, _admin_form(versions[1], parent_number="3"), follow=True)
    assert "Nothing was changed: The parent of v2 must be an earlier version of sentiment; got v3." in (
        refused.content.decode()
    )
    versions[1].refresh_from_db()
    assert versions[1].parent == versions[0]
