"""The registry's portal pages: roles as in the API, post/redirect/get, refusals as form errors or messages, the
model card without its YAML header, alias moves behind a confirmation, inference jobs and their downloads."""

import io
import re
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.audit.models import AuditEvent
from apps.core.choices import Role
from apps.registry.inference import inference_job_run
from apps.registry.models import InferenceJob, ModelAlias, ModelVersion, RegisteredModel
from apps.registry.services import _card_html, alias_move, model_register, version_upload, version_validate
from tests.factories import UserFactory
from tests.mfa import otp_force_login
from tests.registry_models import build_tiny_classifier, pack_zip

pytestmark = pytest.mark.usefixtures("registry_storage")

CARD_WITH_HEADER = """---
license: apache-2.0
tags:
- sentiment
datasets: [imdb]
---
# Tiny sentiment classifier

Built by the tests.
"""


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory) -> Path:
    directory = build_tiny_classifier(tmp_path_factory.mktemp("classifier") / "model")
    (directory / "README.md").write_text(CARD_WITH_HEADER, encoding="utf-8")
    return directory


@pytest.fixture
def sentiment(operator_user) -> RegisteredModel:
    return model_register(owner=operator_user, name="sentiment", task="text-classification", tags=["nlp", "demo"])


def _ready_version(model, directory, actor) -> ModelVersion:
    version = version_upload(model=model, upload=io.BytesIO(pack_zip(directory)), actor=actor)
    version_validate(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return version


@pytest.fixture
def versions(sentiment, classifier_dir, operator_user) -> list[ModelVersion]:
    """Two ready versions, v2 with an evaluation's figures; production on v1."""
    first = _ready_version(sentiment, classifier_dir, operator_user)
    second = _ready_version(sentiment, classifier_dir, operator_user)
    second.metrics = {"evaluation": {"job": 7, "rows": 1200, "accuracy": 0.9124, "macro_f1": 0.875}}
    second.save(update_fields=["metrics"])
    alias_move(model=sentiment, name="production", version=first, actor=UserFactory(roles=[Role.ADMIN]))
    return [first, second]


TAGS_REFUSED = "At most 10 tags; got 11."


def _signed_in(client, user):
    # With a verified second factor: administrators and compliance officers must use one.
    otp_force_login(client, user)
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def _csv_upload(rows: str, name: str = "rows.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, rows.encode(), content_type="text/csv")


# --- Who may see and do what


@pytest.mark.parametrize("path", ["/registry/", "/registry/sentiment/"])
def test_user_without_a_role_is_refused_and_anonymous_sent_to_sign_in(client, sentiment, outsider_user, path):
    assert client.get(path).url.startswith("/accounts/login/")
    assert _signed_in(client, outsider_user).get(path).status_code == 403


@pytest.mark.parametrize("role_user", ["viewer_user", "compliance_user"])
def test_readers_see_models_but_no_register_form_nor_try_it(client, sentiment, versions, role_user, request):
    client = _signed_in(client, request.getfixturevalue(role_user))
    listing = client.get("/registry/").content.decode()
    assert 'href="/registry/sentiment/"' in listing
    assert 'id="register"' not in listing
    page = client.get("/registry/sentiment/").content.decode()
    assert 'id="version-table"' in page
    for form in ("try-it-form", "job-form", "alias-move-form"):
        assert f'id="{form}"' not in page
    assert "viewers and compliance officers only read" in page


def test_reader_cannot_register_move_aliases_or_start_jobs(client, viewer_user, sentiment, versions):
    client = _signed_in(client, viewer_user)
    assert client.post("/registry/", {"name": "other", "task": "fill-mask"}).status_code == 403
    move = {"alias": "staging", "version": 2}
    assert client.get("/registry/sentiment/aliases/move/", move).status_code == 403
    assert client.post("/registry/sentiment/aliases/move/", move).status_code == 403
    upload = {"file": _csv_upload("text\nhello\n"), "target": "version:2"}
    assert client.post("/registry/sentiment/jobs/", upload).status_code == 403
    assert not RegisteredModel.objects.filter(name="other").exists()
    assert not ModelAlias.objects.filter(name="staging").exists()
    assert not InferenceJob.objects.exists()


def test_unknown_model_is_not_found(client, viewer_user):
    assert _signed_in(client, viewer_user).get("/registry/nothing-here/").status_code == 404


# --- Models list


def test_operator_registers_a_model_and_lands_on_its_page(client, operator_user):
    client = _signed_in(client, operator_user)
    response = client.post(
        "/registry/", {"name": "intent", "task": "text-classification", "description": "Intents", "tags": "a, b"}
    )
    assert response.status_code == 302
    assert response.url == "/registry/intent/"
    model = RegisteredModel.objects.get(name="intent")
    assert (model.owner, model.tags, model.description) == (operator_user, ["a", "b"], "Intents")
    assert AuditEvent.objects.filter(action="registry.model.registered", object_id=str(model.pk)).exists()
    page = client.get(response.url)
    assert "Registered intent. Upload its first version" in page.content.decode()
    assert 'id="no-versions"' in page.content.decode()


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"name": "Bad Name", "task": "fill-mask"}, 400, "Use 1 to 100 lowercase letters"),
        ({"name": "sentiment", "task": "fill-mask"}, 409, "A model named &#x27;sentiment&#x27; already exists."),
        (
            {"name": "tagged", "task": "fill-mask", "tags": ",".join("t" * n for n in range(1, 12))},
            400,
            "At most 10 tags; got 11.",
        ),
        ({"name": "no-task", "task": "translation"}, 400, "Select a valid choice."),
    ],
)
def test_refused_registration_shows_the_reason_on_the_form(client, operator_user, sentiment, data, status, message):
    response = _signed_in(client, operator_user).post("/registry/", data)
    assert response.status_code == status
    assert message in response.content.decode()
    assert RegisteredModel.objects.count() == 1


def test_list_searches_filters_by_task_and_pages(client, viewer_user, operator_user):
    for number in range(30):
        task = "fill-mask" if number % 3 == 0 else "text-classification"
        model_register(
            owner=operator_user, name=f"model-{number:02d}", task=task, tags=["even"] if number % 2 == 0 else []
        )
    client = _signed_in(client, viewer_user)

    first = client.get("/registry/").content.decode()
    assert first.count('<tr data-model="') == 25
    assert "Page 1 of 2 · 30 models" in first
    second = client.get("/registry/", {"page": 2}).content.decode()
    assert re.findall(r'<tr data-model="([^"]+)"', second) == [f"model-{number}" for number in range(25, 30)]
    assert client.get("/registry/", {"page": "999999999999999999999"}).status_code == 200

    masks = client.get("/registry/", {"task": "fill-mask"}).content.decode()
    assert masks.count('<tr data-model="') == 10
    assert re.findall(r'<tr data-model="([^"]+)"', client.get("/registry/", {"q": "model-1"}).content.decode()) == [
        f"model-{number}" for number in range(10, 20)
    ]
    tagged = client.get("/registry/", {"q": "even", "task": "fill-mask"}).content.decode()
    assert re.findall(r'<tr data-model="([^"]+)"', tagged) == [
        "model-00",
        "model-06",
        "model-12",
        "model-18",
        "model-24",
    ]
    nothing = client.get("/registry/", {"q": "zzz"}).content.decode()
    assert "No model matches this search." in nothing


def test_list_shows_latest_version_aliases_tags_and_owner(client, viewer_user, sentiment, versions):
    page = _signed_in(client, viewer_user).get("/registry/").content.decode()
    row = re.search(r'<tr data-model="sentiment">(.*?)</tr>', page, re.S).group(1)
    for text in ("Text classification", "v2", "production → v1", "nlp", "demo", "oscar-operator"):
        assert text in row


@pytest.mark.parametrize(
    ("role_user", "advice"),
    [
        ("operator_user", "Register one with the form below"),
        ("viewer_user", "Operators and administrators register models"),
    ],
)
def test_empty_registry_tells_how_to_register(client, role_user, advice, request):
    page = _signed_in(client, request.getfixturevalue(role_user)).get("/registry/").content.decode()
    assert "No model is registered yet." in page
    assert advice in page


# --- Model page


def test_model_page_shows_versions_as_a_table_and_the_card_without_its_yaml_header(client, viewer_user, versions):
    page = _signed_in(client, viewer_user).get("/registry/sentiment/").content.decode()
    v2 = re.search(r'<tr data-version="2"[^>]*>(.*?)</tr>', page, re.S).group(1)
    assert re.findall(r"<td[^>]*>(.*?)</td>", v2, re.S)[5:8] == ["0.912", "0.875", "1,200"]
    assert 'pill-ready">ready' in v2
    assert '"evaluation"' not in page  # metrics are a table, never JSON
    card = re.search(r'<div class="model-card">(.*?)</div>', page, re.S).group(1)
    assert "<h1>Tiny sentiment classifier</h1>" in card
    for header in ("license", "apache-2.0", "datasets", "<hr"):
        assert header not in card


def test_comparison_puts_two_chosen_versions_side_by_side(client, viewer_user, versions):
    client = _signed_in(client, viewer_user)
    default = client.get("/registry/sentiment/").content.decode()
    table = re.search(r'<table id="compare-table".*?</table>', default, re.S).group(0)
    assert re.findall(r"<th>v(\d)</th>", table) == ["1", "2"]
    accuracy = re.search(r"<tr><th>Accuracy</th>(.*?)</tr>", table, re.S).group(1)
    assert re.findall(r"<td>(.*?)</td>", accuracy) == ["—", "0.912"]
    chosen = client.get("/registry/sentiment/", {"a": 2, "b": 2}).content.decode()
    assert re.findall(r"<th>v(\d)</th>", re.search(r'<table id="compare-table".*?</table>', chosen, re.S).group(0)) == [
        "2",
        "2",
    ]
    assert client.get("/registry/sentiment/", {"a": "x", "b": 99}).status_code == 200


# --- Alias moves


def test_alias_move_asks_for_confirmation_then_moves_on_post(client, operator_user, versions):
    client = _signed_in(client, operator_user)
    confirm = client.get("/registry/sentiment/aliases/move/", {"alias": "staging", "version": 2})
    assert confirm.status_code == 200
    assert "sentiment has no alias <strong>staging</strong> yet" in confirm.content.decode()
    assert not ModelAlias.objects.filter(name="staging").exists()  # asking moved nothing

    moved = client.post("/registry/sentiment/aliases/move/", {"alias": "staging", "version": 2})
    assert moved.status_code == 302
    assert moved.url == "/registry/sentiment/#aliases"
    assert ModelAlias.objects.get(name="staging").version == versions[1]
    assert _messages(moved) == ["staging of sentiment now points at v2."]


def test_moving_production_needs_an_admin_and_says_so(client, operator_user, admin_user, versions, otp_login):
    refused = _signed_in(client, operator_user).post(
        "/registry/sentiment/aliases/move/", {"alias": "production", "version": 2}
    )
    assert refused.status_code == 302
    assert _messages(refused) == ["The alias was not moved: Moving the production alias needs the admin role."]
    assert ModelAlias.objects.get(name="production").version == versions[0]

    otp_login(client, admin_user)
    confirm = client.get("/registry/sentiment/aliases/move/", {"alias": "production", "version": 2}).content.decode()
    assert "<strong>production</strong> of sentiment points at v1 now" in confirm
    client.post("/registry/sentiment/aliases/move/", {"alias": "production", "version": 2})
    assert ModelAlias.objects.get(name="production").version == versions[1]


def test_alias_move_of_another_operators_model_is_refused(client, versions):
    other = UserFactory(username="olga-operator", roles=[Role.OPERATOR])
    response = _signed_in(client, other).post("/registry/sentiment/aliases/move/", {"alias": "staging", "version": 2})
    assert response.status_code == 302
    assert _messages(response) == [
        "The alias was not moved: Only the owner of sentiment (an operator) or an administrator may change it."
    ]
    assert not ModelAlias.objects.filter(name="staging").exists()


def test_alias_move_to_an_unusable_version_is_a_form_error(client, operator_user, versions):
    versions[1].status = "invalid"
    versions[1].save(update_fields=["status"])
    response = _signed_in(client, operator_user).get(
        "/registry/sentiment/aliases/move/", {"alias": "staging", "version": 2}
    )
    assert response.status_code == 400
    assert "Select a valid choice. 2 is not one of the available choices." in response.content.decode()


# --- Inference jobs


def test_start_job_redirects_and_lists_it_then_downloads_its_results(client, operator_user, versions):
    client = _signed_in(client, operator_user)
    upload = _csv_upload("text,label\ngreat service,positive\nslow queue,negative\n")
    response = client.post("/registry/sentiment/jobs/", {"file": upload, "target": "alias:production", "name": "smoke"})
    assert response.status_code == 302
    assert response.url == "/registry/sentiment/#jobs"
    job = InferenceJob.objects.get()
    assert (job.name, job.kind, job.version, job.progress_total) == ("smoke", "evaluation", versions[0], 2)
    assert _messages(response) == [
        f"Evaluation (with labels) job #{job.pk} queued over 2 rows; its progress shows below as it runs."
    ]

    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")
    page = client.get("/registry/sentiment/").content.decode()
    row = re.search(rf'<tr data-job-id="{job.pk}".*?</tr>', page, re.S).group(0)
    assert 'pill-completed">completed' in row
    assert "2 / 2" in row
    download = client.get(f"/registry/jobs/{job.pk}/result/")
    assert download.status_code == 200
    assert download["Content-Disposition"] == f'attachment; filename="inference-job-{job.pk}-results.csv"'
    assert b"great service" in b"".join(download.streaming_content)


def test_others_cannot_download_an_operators_results(client, operator_user, viewer_user, versions):
    job = _start(client, operator_user, "text\nhello\n")
    inference_job_run(job_id=job.pk, task_id="task-1", worker="here")
    other = UserFactory(username="olga-operator", roles=[Role.OPERATOR])
    assert _signed_in(client, other).get(f"/registry/jobs/{job.pk}/result/").status_code == 404
    assert _signed_in(client, viewer_user).get(f"/registry/jobs/{job.pk}/result/").status_code == 200


def test_results_of_an_unfinished_job_say_why_there_are_none(client, operator_user, versions):
    job = _start(client, operator_user, "text\nhello\n")
    response = client.get(f"/registry/jobs/{job.pk}/result/")
    assert response.status_code == 302
    assert _messages(response)[-1] == f"Job #{job.pk} is queued; results exist only for completed jobs."


def _start(client, user, rows: str) -> InferenceJob:
    client = _signed_in(client, user)
    response = client.post("/registry/sentiment/jobs/", {"file": _csv_upload(rows), "target": "version:1"})
    assert response.status_code == 302, response.content.decode()
    return InferenceJob.objects.latest("id")


@pytest.mark.parametrize(
    ("rows", "status", "message"),
    [
        ("name\nhello\n", 400, "The CSV header has no text column (it names &#x27;name&#x27;)."),
        ("text\n", 400, "The file has a header but no rows."),
        ("", 400, "The file is empty."),
    ],
)
def test_bad_input_files_are_refused_on_the_form(client, operator_user, versions, rows, status, message):
    response = _signed_in(client, operator_user).post(
        "/registry/sentiment/jobs/", {"file": _csv_upload(rows), "target": "version:1"}
    )
    assert response.status_code == status
    assert message in response.content.decode()
    assert not InferenceJob.objects.exists()


def test_job_on_a_version_no_longer_ready_is_refused(client, operator_user, versions):
    ModelVersion.objects.filter(pk=versions[0].pk).update(status="invalid")
    response = _signed_in(client, operator_user).post(
        "/registry/sentiment/jobs/", {"file": _csv_upload("text\nhi\n"), "target": "alias:production"}
    )
    assert response.status_code == 409
    assert "sentiment v1 is invalid and cannot be used." in response.content.decode()


def test_file_over_the_size_limit_is_refused_as_it_arrives(client, operator_user, versions, settings):
    settings.REGISTRY_JOB_MAX_FILE_MB = 1
    rows = "text\n" + "a fairly long line of text to fill the file\n" * 30_000
    response = _signed_in(client, operator_user).post(
        "/registry/sentiment/jobs/", {"file": _csv_upload(rows), "target": "version:1"}
    )
    assert response.status_code == 302
    (message,) = _messages(response)
    assert message.startswith("The job was not started: The upload (")
    assert message.endswith("is larger than the limit of 1 MB.")
    assert not InferenceJob.objects.exists()


def test_job_form_without_a_file_names_the_field(client, operator_user, versions):
    response = _signed_in(client, operator_user).post("/registry/sentiment/jobs/", {"target": "version:1"})
    assert response.status_code == 400
    assert re.search(r'id="id_file-errors"[^>]*><li>This field is required.</li>', response.content.decode())


def test_job_form_requires_the_csrf_token(operator_user, versions):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    response = client.post("/registry/sentiment/jobs/", {"file": _csv_upload("text\nhi\n"), "target": "version:1"})
    assert response.status_code == 403
    assert not InferenceJob.objects.exists()


def test_model_without_versions_explains_how_to_upload(client, operator_user, sentiment):
    page = _signed_in(client, operator_user).get("/registry/sentiment/").content.decode()
    assert "No version uploaded yet." in page
    assert "/api/v1/registry/models/sentiment/versions/" in page
    assert "Nothing to run yet: the model needs a ready version first." in page


@pytest.mark.parametrize(
    ("card", "shown"),
    [
        ("---\nlicense: [unclosed\n: bad yaml\n---\n# Card\n", "<h1>Card</h1>"),
        ("# Card\n\n---\n\nbelow a rule\n", "<hr>"),  # a rule further down is the card's own
    ],
)
def test_model_card_drops_any_leading_yaml_header_and_keeps_later_rules(tmp_path, card, shown):
    (tmp_path / "README.md").write_text(card, encoding="utf-8")
    html = _card_html(tmp_path)
    assert shown in html
    assert "license" not in html
    assert html.startswith("<h1>Card</h1>")
