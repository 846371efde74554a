"""Uploading a version from a model's portal page: the API's roles and checks through the same service, post/redirect/
get, refusals as form errors (what was sent) or messages (who sent it, or a body over the size limit)."""

import re
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from apps.audit.models import AuditEvent
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.services import model_register
from tests.factories import UserFactory
from tests.mfa import otp_force_login
from tests.registry_models import MIB, build_tiny_classifier, pack_zip, pickle_weights_zip

pytestmark = pytest.mark.usefixtures("registry_storage")

PAGE = "/registry/sentiment/"
UPLOAD = "/registry/sentiment/versions/"


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    return build_tiny_classifier(tmp_path_factory.mktemp("classifier") / "model")


@pytest.fixture
def sentiment(operator_user) -> RegisteredModel:
    return model_register(owner=operator_user, name="sentiment", task="text-classification")


def _signed_in(client, user):
    otp_force_login(client, user)
    return client


def _archive(content: bytes, name: str = "model.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/zip")


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def test_owner_uploads_a_version_and_lands_on_it_being_validated(client, operator_user, sentiment, classifier_dir):
    client = _signed_in(client, operator_user)
    response = client.post(UPLOAD, {"artifact": _archive(pack_zip(classifier_dir))})
    assert response.status_code == 302
    assert response.url == f"{PAGE}#versions"
    assert _messages(response) == ["Uploaded v1 of sentiment; it is being validated (see below)."]
    version = ModelVersion.objects.get(model=sentiment)
    assert (version.version, version.status, version.created_by) == (1, "validating", operator_user)
    assert AuditEvent.objects.filter(action="registry.version.uploaded", object_id=str(version.pk)).exists()
    page = client.get(PAGE).content.decode()
    assert re.search(r'<tr data-version="1" data-status="validating"', page)
    assert '<span class="pill pill-validating">validating</span>' in page


def test_administrator_uploads_to_any_model(client, admin_user, sentiment, classifier_dir):
    response = _signed_in(client, admin_user).post(UPLOAD, {"artifact": _archive(pack_zip(classifier_dir))})
    assert response.status_code == 302
    assert ModelVersion.objects.get(model=sentiment).created_by == admin_user


def test_upload_form_names_the_limits_in_words(client, operator_user, sentiment, settings):
    settings.REGISTRY_MAX_ARTIFACT_MB, settings.REGISTRY_MAX_FILES, settings.REGISTRY_MAX_UNCOMPRESSED_MB = 300, 50, 900
    page = _signed_in(client, operator_user).get(PAGE).content.decode()
    assert 'id="version-upload-form"' in page
    assert "at most 300 MB, 50 files and 900 MB unpacked" in page
    assert "REGISTRY_" not in page.split('id="version-upload-form"')[1].split("</form>")[0]


@pytest.mark.parametrize("role_user", ["viewer_user", "compliance_user"])
def test_readers_get_no_upload_form_and_are_refused(client, sentiment, classifier_dir, role_user, request):
    client = _signed_in(client, request.getfixturevalue(role_user))
    page = client.get(PAGE).content.decode()
    assert 'id="version-upload-form"' not in page
    assert "The model's owner or an administrator uploads its versions." in page
    assert client.post(UPLOAD, {"artifact": _archive(pack_zip(classifier_dir))}).status_code == 403
    assert not ModelVersion.objects.exists()


def test_user_without_a_role_is_refused_and_anonymous_sent_to_sign_in(client, sentiment, outsider_user):
    assert client.post(UPLOAD, {}).url.startswith("/accounts/login/")
    assert _signed_in(client, outsider_user).post(UPLOAD, {}).status_code == 403


def test_another_operators_model_is_refused_with_a_message(client, sentiment, classifier_dir):
    other = UserFactory(username="olga-operator", roles=["operator"])
    client = _signed_in(client, other)
    assert 'id="version-upload-form"' not in client.get(PAGE).content.decode()
    response = client.post(UPLOAD, {"artifact": _archive(pack_zip(classifier_dir))})
    assert response.status_code == 302
    assert response.url == f"{PAGE}#versions"
    assert _messages(response) == [
        "The version was not uploaded: Only the owner of sentiment (an operator) or an administrator may change it."
    ]
    assert not ModelVersion.objects.exists()


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"this is no archive", 400, "The upload is not a .zip or .tar.gz archive."),
        (b"", 400, "The archive is empty (0 bytes)."),
        (pickle_weights_zip, 400, "pickle"),
    ],
    ids=["not an archive", "empty", "pickle weights"],
)
def test_bad_archive_is_refused_on_the_form(client, operator_user, sentiment, classifier_dir, content, status, message):
    content = content(classifier_dir) if callable(content) else content
    response = _signed_in(client, operator_user).post(UPLOAD, {"artifact": _archive(content)})
    assert response.status_code == status
    page = response.content.decode()
    errors = re.search(r'id="id_artifact-errors"[^>]*><li>(.*?)</li>', page)
    assert errors, page
    assert message in errors.group(1)
    assert not ModelVersion.objects.exists()


def test_archive_over_the_size_limit_is_refused_as_it_arrives(client, operator_user, sentiment, settings):
    settings.REGISTRY_MAX_ARTIFACT_MB = 1
    response = _signed_in(client, operator_user).post(UPLOAD, {"artifact": _archive(b"\0" * (2 * MIB))})
    assert response.status_code == 302
    assert response.url == f"{PAGE}#versions"
    (message,) = _messages(response)
    assert re.fullmatch(
        r"The version was not uploaded: The upload \([\d,]+ bytes\) is larger than the limit of 1 MB\.", message
    )
    assert not ModelVersion.objects.exists()


def test_form_without_a_file_names_the_field(client, operator_user, sentiment):
    response = _signed_in(client, operator_user).post(UPLOAD, {})
    assert response.status_code == 400
    assert re.search(r'id="id_artifact-errors"[^>]*><li>This field is required.</li>', response.content.decode())


def test_upload_requires_the_csrf_token(operator_user, sentiment, classifier_dir):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    response = client.post(UPLOAD, {"artifact": _archive(pack_zip(classifier_dir))})
    assert response.status_code == 403
    assert not ModelVersion.objects.exists()


def test_unknown_model_is_not_found(client, operator_user, classifier_dir):
    response = _signed_in(client, operator_user).post("/registry/nothing/versions/", {"artifact": _archive(b"x")})
    assert response.status_code == 404
