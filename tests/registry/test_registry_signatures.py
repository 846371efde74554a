"""Signatures: a version's input and output JSON Schemas, set over the API and checked on every prediction."""

import io
from pathlib import Path

import pytest
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.services import model_register, version_upload, version_validate
from tests.core.test_metrics import _sample
from tests.helpers import api_error
from tests.registry_models import build_tiny_classifier, pack_zip

pytestmark = [pytest.mark.usefixtures("registry_storage"), pytest.mark.django_db]

MODEL_URL = "/api/v1/registry/models/sentiment/"
VERSION_URL = MODEL_URL + "versions/1/"
INPUT_SCHEMA = {"type": "string", "minLength": 3, "maxLength": 40, "pattern": "^[a-z ]+$"}
OUTPUT_SCHEMA = {
    "type": "object",
    "required": ["label", "score"],
    "properties": {"label": {"enum": ["negative", "positive"]}, "score": {"type": "number", "minimum": 0}},
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("signed") / "model")


@pytest.fixture
def version(operator_user, folder) -> ModelVersion:
    model: RegisteredModel = model_register(owner=operator_user, name="sentiment", task="text-classification")
    version = version_upload(model=model, upload=io.BytesIO(pack_zip(folder)), actor=operator_user)
    version_validate(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return version


@pytest.fixture
def operator(operator_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(operator_user)
    return client


def _predict(client: APIClient, *inputs):
    return client.post(MODEL_URL + "predict/", {"inputs": list(inputs), "version": 1}, format="json")


def test_signature_is_set_shown_and_inputs_are_checked_naming_the_input(operator, version):
    patched = operator.patch(VERSION_URL, {"input_schema": INPUT_SCHEMA, "output_schema": OUTPUT_SCHEMA}, format="json")
    assert patched.status_code == 200, patched.content
    assert patched.json()["signature"] == {"input_schema": INPUT_SCHEMA, "output_schema": OUTPUT_SCHEMA}
    assert operator.get(VERSION_URL).json()["signature"]["input_schema"] == INPUT_SCHEMA

    assert _predict(operator, "the queue is stuck", "all fine").status_code == 200
    too_short = _predict(operator, "the queue is stuck", "ok")
    assert api_error(too_short, 400, "invalid")["errors"]["inputs"] == [
        "Input 1: 'ok' is too short (the input schema of sentiment v1)."
    ]
    bad_pattern = _predict(operator, "Stuck!")
    assert api_error(bad_pattern, 400, "invalid")["errors"]["inputs"][0].startswith(
        "Input 0: 'Stuck!' does not match '^[a-z ]+$'"
    )
    assert AuditEvent.objects.filter(action="registry.version.updated", object_id=str(version.pk)).count() == 1


def test_output_outside_the_schema_is_withheld_with_a_409_counted_and_audited(operator, version, client):
    # The model answers negative or positive; this schema declares other labels, as a broken version would break it.
    schema = {**OUTPUT_SCHEMA, "properties": {"label": {"enum": ["ham", "spam"]}}}
    assert operator.patch(VERSION_URL, {"output_schema": schema}, format="json").status_code == 200
    labels = {"model": "sentiment", "alias": "", "version": "1", "outcome": "invalid_output"}
    before = _sample(client.get("/metrics").content.decode(), "registry_alias_predictions_total", **labels) or 0

    refused = _predict(operator, "the queue is stuck")

    detail = api_error(refused, 409, "output_schema")["detail"]
    assert detail.startswith("sentiment v1 answered outside its output schema: output 0 at $.label: ")
    assert "is not one of ['ham', 'spam']" in detail
    assert "outputs" not in refused.json()
    after = _sample(client.get("/metrics").content.decode(), "registry_alias_predictions_total", **labels)
    assert after - before == 1
    failure = AuditEvent.objects.filter(action="registry.prediction", outcome="failure").get()
    assert "output 0 at $.label" in failure.changes["output_schema"]
    # Removing the schema lets the outputs through again.
    assert operator.patch(VERSION_URL, {"output_schema": None}, format="json").status_code == 200
    assert _predict(operator, "the queue is stuck").status_code == 200


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([1, 2], "A JSON Schema must be an object (or null to remove it)."),
        ({"type": "strung"}, "Not a valid JSON Schema at $.type: 'strung' is not valid under any of the given schemas"),
        ({"minLength": -1}, "Not a valid JSON Schema at $.minLength: -1 is less than the minimum of 0"),
        (
            {"$ref": "https://example.com/schema.json"},
            "$ref 'https://example.com/schema.json' points outside the schema; only references starting with '#' "
            "are allowed.",
        ),
        ({"enum": ["x" * 100] * 250}, "It is 26,010 bytes of JSON; the limit is 20,000."),
        ({"$ref": "#/$defs/missing"}, "$ref '#/$defs/missing' points at nothing in the schema."),
    ],
    ids=["not-an-object", "bad-type", "bad-keyword", "remote-ref", "too-large", "dangling-ref"],
)
def test_unusable_schema_is_refused_naming_the_problem(operator, version, schema, message):
    refused = operator.patch(VERSION_URL, {"input_schema": schema}, format="json")
    assert api_error(refused, 400, "invalid")["errors"] == {"input_schema": [message]}
    version.refresh_from_db()
    assert version.input_schema is None


def test_readers_and_other_operators_cannot_set_a_signature(version, viewer_user, django_user_model):
    from apps.core.choices import Role
    from tests.factories import UserFactory

    for user in (viewer_user, UserFactory(username="olga-operator", roles=[Role.OPERATOR])):
        client = APIClient()
        client.force_authenticate(user)
        assert client.patch(VERSION_URL, {"input_schema": INPUT_SCHEMA}, format="json").status_code == 403
    version.refresh_from_db()
    assert version.input_schema is None


def test_a_schema_whose_reference_fails_at_prediction_is_a_409_not_a_500(operator, version):
    # An anchor that no subschema declares passes the metaschema; it only fails when a value reaches it.
    assert operator.patch(VERSION_URL, {"input_schema": {"$ref": "#nowhere"}}, format="json").status_code == 200
    refused = _predict(operator, "the queue is stuck")
    detail = api_error(refused, 409, "conflict")["detail"]
    assert detail.startswith("The input_schema of sentiment v1 cannot be used: a reference cannot be resolved: ")
    assert detail.endswith(". Fix or remove it.")


def test_a_long_input_is_quoted_shortened_in_the_refusal(operator, version):
    assert (
        operator.patch(VERSION_URL, {"input_schema": {"type": "string", "maxLength": 10}}, format="json").status_code
        == 200
    )
    message = api_error(_predict(operator, "a" * 5_000), 400, "invalid")["errors"]["inputs"][0]
    assert message.startswith("Input 0: 'aaaa")
    assert "…" in message
    assert len(message) < 400
