"""The model registry in the admin: lists, the model page with versions and their comparison, registering and
uploading through the services, alias / archive / re-validate / evaluation actions, inference jobs, roles."""

import re
import time

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.roles import roles_setup
from apps.audit.models import AuditEvent
from apps.core.paginators import EstimatedCountPaginator
from apps.jobs.choices import JobStatus
from apps.registry import admin as registry_admin
from apps.registry import services
from apps.registry.choices import InferenceKind, VersionStatus
from apps.registry.inference import inference_job_create
from apps.registry.models import InferenceJob, ModelAlias, ModelVersion, RegisteredModel
from tests.factories import UserFactory
from tests.mfa import staff_force_login
from tests.registry_models import BAD_ARTIFACTS, build_tiny_classifier, pack_zip

MODELS_URL = "/admin/registry/registeredmodel/"
VERSIONS_URL = "/admin/registry/modelversion/"
JOBS_URL = "/admin/registry/inferencejob/"
LABELLED_CSV = b"text,label\nthe service is great,positive\nnothing works,negative\ni love it,positive\n"


@pytest.fixture(scope="module")
def tiny_zip(tmp_path_factory) -> bytes:
    return pack_zip(build_tiny_classifier(tmp_path_factory.mktemp("tiny") / "model"))


@pytest.fixture
def storage(settings, tmp_path):
    """Extracted versions and stored files in a folder of this test only, to see what an upload leaves behind."""
    settings.REGISTRY_DIR = tmp_path / "registry"
    settings.MEDIA_ROOT = tmp_path / "media"
    return tmp_path


def _messages(response) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in get_messages(response.wsgi_request)]


def _model(owner, name: str = "sentiment") -> RegisteredModel:
    return services.model_register(owner=owner, name=name, task="text-classification")


def _version(model: RegisteredModel, number: int, *, status=VersionStatus.READY, **fields) -> ModelVersion:
    """A version row as validation leaves it (for tests about showing and changing versions, not uploading)."""
    return ModelVersion.objects.create(
        model=model,
        version=number,
        artifact=f"registry/artifacts/{model.name}-v{number}",
        sha256="0" * 64,
        size_bytes=150_000,
        status=status,
        parameter_count=43_690,
        created_by=model.owner,
        **fields,
    )


def _upload(model_data: bytes, name: str = "model.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, model_data, content_type="application/zip")


def _files_under(folder) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file())


def _action(client, action: str, objects, url: str = VERSIONS_URL, **form):
    return client.post(url, {"action": action, "_selected_action": [obj.pk for obj in objects], **form})


# --- Lists


@pytest.mark.django_db
def test_lists_of_models_versions_and_jobs_load_without_a_full_count(admin_client, admin_user, operator_user, storage):
    model = _model(operator_user)
    first, second = _version(model, 1), _version(model, 2)
    services.alias_move(model=model, name="production", version=first, actor=admin_user)
    services.alias_move(model=model, name="staging", version=second, actor=operator_user)
    _model(operator_user, "empty-model")
    job = inference_job_create(owner=operator_user, model=model, upload=_upload(LABELLED_CSV, "eval.csv"), number=2)

    for url in (MODELS_URL, VERSIONS_URL, JOBS_URL):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        assert response.context["cl"].show_full_result_count is False
        assert isinstance(response.context["cl"].paginator, EstimatedCountPaginator)

    listed = {row.name: row for row in admin_client.get(MODELS_URL).context["cl"].result_list}
    assert (listed["sentiment"].versions_count, listed["empty-model"].versions_count) == (2, 0)
    models_page = admin_client.get(MODELS_URL).content.decode()
    assert re.search(r'<td class="field-production[^>]*>v1</td>\s*<td class="field-staging[^>]*>v2</td>', models_page)
    assert [row.id for row in admin_client.get(MODELS_URL, {"q": "empty"}).context["cl"].result_list] == [
        RegisteredModel.objects.get(name="empty-model").pk
    ]
    assert len(admin_client.get(MODELS_URL, {"task__exact": "fill-mask"}).context["cl"].result_list) == 0

    versions_page = admin_client.get(VERSIONS_URL).content.decode()
    assert re.search(r'<td class="field-aliases_list[^>]*>staging</td>', versions_page)
    jobs_page = admin_client.get(JOBS_URL).content.decode()
    assert re.search(r'<td class="field-progress[^>]*>0 / 3 \(0%\)</td>', jobs_page)
    assert f"{job.pk}</a>" in jobs_page
    evaluations = admin_client.get(JOBS_URL, {"kind__exact": "evaluation", "q": "sentiment"}).context["cl"]
    assert [row.pk for row in evaluations.result_list] == [job.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("url", [MODELS_URL, VERSIONS_URL])
def test_list_query_count_does_not_grow_with_models_versions_and_aliases(admin_client, operator_user, url):
    def page_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(url).status_code == 200
        return len(queries.captured_queries)

    def add_models(names):
        for name in names:
            model = _model(operator_user, name)
            services.alias_move(model=model, name="staging", version=_version(model, 1), actor=operator_user)
            _version(model, 2)

    add_models(["a", "b"])
    with_2 = page_queries()
    add_models([f"model-{n}" for n in range(12)])
    assert page_queries() == with_2


# --- The model page


@pytest.mark.django_db
def test_model_page_shows_versions_inline_aliases_and_a_comparison_of_their_metrics(admin_client, operator_user):
    model = _model(operator_user)
    evaluated = {"rows": 1200, "accuracy": 0.75, "macro_f1": 0.66667, "job": 7}
    first = _version(model, 1, metrics={"evaluation": evaluated})
    second = _version(model, 2, metrics={"evaluation": {"rows": 1200, "accuracy": 0.9, "macro_f1": 0.85}})
    _version(model, 3, status=VersionStatus.INVALID, status_reason="config.json names BertForMaskedLM.")
    services.alias_move(model=model, name="staging", version=second, actor=operator_user)

    response = admin_client.get(f"{MODELS_URL}{model.pk}/change/")

    assert response.status_code == 200
    page = response.content.decode()
    versions_inline = response.context["inline_admin_formsets"][0]
    assert [form.original.version for form in versions_inline] == [3, 2, 1]
    assert "accuracy 0.750, macro-F1 0.667 over 1,200 rows (job #7)" in page
    assert "Invalid: config.json names BertForMaskedLM." in page
    assert f'href="{VERSIONS_URL}{first.pk}/change/"' in page
    comparison = re.search(r'<table class="version-comparison">.*?</table>', page, re.S).group(0)
    rows = re.findall(r"<tr><td><a [^>]*>(v\d)</a></td>(.*?)</tr>", comparison)
    assert [(version, re.findall(r"<td>(.*?)</td>", cells)) for version, cells in rows] == [
        ("v3", ["Invalid: config.json names BertForMaskedLM.", "—", "43,690", "—", "—", "—"]),
        ("v2", ["Ready", "staging", "43,690", "0.900", "0.850", "1,200"]),
        ("v1", ["Ready", "—", "43,690", "0.750", "0.667", "1,200"]),
    ]
    assert f'href="{VERSIONS_URL}add/?model={model.pk}"' in page  # "Upload a version"
    assert 'name="_save"' not in page


@pytest.mark.django_db
def test_registering_a_model_in_the_admin_goes_through_the_service(admin_client, admin_user):
    response = admin_client.post(
        f"{MODELS_URL}add/",
        {"name": "news-topics", "task": "text-classification", "description": "Topics.", "tags": "news, topics"},
    )

    assert response.status_code == 302
    model = RegisteredModel.objects.get(name="news-topics")
    assert (model.owner, model.tags, model.description) == (admin_user, ["news", "topics"], "Topics.")
    assert AuditEvent.objects.filter(action="registry.model.registered", object_id=str(model.pk)).count() == 1


@pytest.mark.django_db
def test_registering_a_taken_or_malformed_name_shows_form_errors_and_registers_nothing(admin_client, operator_user):
    _model(operator_user, "taken")

    taken = admin_client.post(f"{MODELS_URL}add/", {"name": "taken", "task": "text-classification"})
    malformed = admin_client.post(f"{MODELS_URL}add/", {"name": "Bad Name!", "task": "text-classification"})
    too_many_tags = admin_client.post(
        f"{MODELS_URL}add/", {"name": "tagged", "task": "fill-mask", "tags": ",".join(f"t{n}" for n in range(11))}
    )

    assert taken.status_code == malformed.status_code == too_many_tags.status_code == 200
    assert "already exists" in taken.context["adminform"].form.errors["name"][0]
    assert "lowercase letters" in malformed.context["adminform"].form.errors["name"][0]
    assert too_many_tags.context["adminform"].form.errors["tags"] == ["At most 10 tags; got 11."]
    assert list(RegisteredModel.objects.values_list("name", flat=True)) == ["taken"]


# --- Uploading a version


@pytest.mark.django_db(transaction=True)
def test_uploading_a_version_in_the_admin_creates_it_and_the_worker_makes_it_ready(
    client, operator_user, storage, tiny_zip, celery_worker
):
    roles_setup()
    model = _model(operator_user)
    staff_force_login(client, operator_user)
    assert client.get(f"{VERSIONS_URL}add/?model={model.pk}").status_code == 200

    response = client.post(f"{VERSIONS_URL}add/", {"model": model.pk, "artifact": _upload(tiny_zip)})

    version = ModelVersion.objects.get(model=model)
    assert response.status_code == 302
    assert response["Location"] == f"{VERSIONS_URL}{version.pk}/change/"
    assert (version.version, version.created_by, version.size_bytes) == (1, operator_user, len(tiny_zip))
    deadline = time.monotonic() + 60
    while version.status == VersionStatus.VALIDATING and time.monotonic() < deadline:
        time.sleep(0.1)
        version.refresh_from_db()
    assert version.status == VersionStatus.READY, version.status_reason
    page = client.get(f"{VERSIONS_URL}{version.pk}/change/").content.decode()
    assert f"{version.parameter_count:,}" in page
    assert "negative, positive" in page  # the labels


@pytest.mark.django_db
@pytest.mark.parametrize("bad", BAD_ARTIFACTS, ids=[bad.name for bad in BAD_ARTIFACTS])
def test_a_bad_archive_uploaded_in_the_admin_shows_why_and_leaves_nothing(
    admin_client, operator_user, storage, settings, tmp_path_factory, bad
):
    settings.REGISTRY_MAX_UNCOMPRESSED_MB = 10  # below the zip bomb's 100 MiB
    model = _model(operator_user)
    data = bad.build(build_tiny_classifier(tmp_path_factory.mktemp("model") / "model"))

    response = admin_client.post(f"{VERSIONS_URL}add/", {"model": model.pk, "artifact": _upload(data)})

    assert response.status_code == 200
    errors = response.context["form"].errors["artifact"]
    assert len(errors) == 1
    for keyword in bad.keywords:
        assert keyword.lower() in errors[0].lower()
    assert errors[0] in response.content.decode().replace("&#x27;", "'").replace("&quot;", '"')
    assert not ModelVersion.objects.exists()
    assert _files_under(storage) == []


@pytest.mark.django_db
def test_operators_upload_only_to_their_own_models_and_viewers_not_at_all(client, roles, operator_user, viewer_user):
    others = _model(UserFactory(username="olga-operator", roles=["operator"]), "olgas-model")
    own = _model(operator_user, "oscars-model")
    staff_force_login(client, operator_user)

    form = client.get(f"{VERSIONS_URL}add/").context["form"]
    assert list(form.fields["model"].queryset) == [own]
    model_page = client.get(f"{MODELS_URL}{others.pk}/change/").content.decode()
    assert "Upload a version" not in model_page

    staff_force_login(client, viewer_user)
    assert client.get(f"{VERSIONS_URL}add/").status_code == 403
    assert client.get(f"{MODELS_URL}add/").status_code == 403
    assert "Upload a version" not in client.get(f"{MODELS_URL}{own.pk}/change/").content.decode()


# --- A version's page


@pytest.mark.django_db
def test_version_page_shows_the_model_card_without_the_script_of_its_readme(
    admin_client, operator_user, storage, tiny_zip
):
    version = services.version_upload(model=_model(operator_user), upload=_upload(tiny_zip), actor=operator_user)

    page = admin_client.get(f"{VERSIONS_URL}{version.pk}/change/").content.decode()

    assert "<h1>Tiny sentiment classifier</h1>" in page
    assert "<li>labels: negative, positive</li>" in page
    assert "alert(1)" not in page
    assert "config.json" in page  # the file list


@pytest.mark.django_db
def test_version_page_shows_evaluation_metrics_and_the_confusion_matrix(admin_client, operator_user):
    confusion = {"labels": ["negative", "<b>positive</b>"], "matrix": [[40, 10], [5, 45]]}
    evaluation = {"rows": 100, "accuracy": 0.85, "macro_f1": 0.849, "job": 3, "confusion_matrix": confusion}
    version = _version(_model(operator_user), 1, metrics={"evaluation": evaluation})

    page = admin_client.get(f"{VERSIONS_URL}{version.pk}/change/").content.decode()

    assert "accuracy 0.850, macro-F1 0.849 over 100 rows (job #3)" in page
    assert "<tr><th>negative</th><td>40</td><td>10</td></tr>" in page
    assert "<tr><th>&lt;b&gt;positive&lt;/b&gt;</th><td>5</td><td>45</td></tr>" in page


@pytest.mark.django_db
def test_model_page_names_its_aliases_in_plain_english(admin_client, operator_user):
    model = _model(operator_user)

    page = admin_client.get(f"{MODELS_URL}{model.pk}/change/").content.decode()

    assert "Model aliases" in page
    assert "aliass" not in page.lower()


@pytest.mark.django_db
def test_version_page_shows_architectures_and_metrics_as_text_and_tables_not_json(admin_client, operator_user):
    metrics = {"evaluation": {"rows": 100, "accuracy": 0.85, "at": "2026-01-02T03:04:05+00:00"}, "load_ms": 31}
    version = _version(
        _model(operator_user), 1, architectures=["BertForSequenceClassification", "BertModel"], metrics=metrics
    )

    page = admin_client.get(f"{VERSIONS_URL}{version.pk}/change/").content.decode()

    assert "BertForSequenceClassification, BertModel" in page
    assert '<th scope="row">Load ms</th><td>31</td>' in page
    assert '<th scope="row">Accuracy</th><td>0.85</td>' in page
    assert "[&quot;Bert" not in page
    assert "&quot;evaluation&quot;" not in page


@pytest.mark.django_db
def test_versions_cannot_be_changed_or_deleted_in_the_admin(admin_client, operator_user):
    version = _version(_model(operator_user), 1)
    # Only tags, lineage and signature are editable: a posted status is ignored.
    admin_client.post(f"{VERSIONS_URL}{version.pk}/change/", {"status": "invalid"})
    assert admin_client.post(f"{VERSIONS_URL}{version.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ModelVersion.objects.get(pk=version.pk).status == VersionStatus.READY


# --- Actions on versions


@pytest.mark.django_db
def test_alias_action_asks_for_the_alias_then_moves_staging_and_audits_it(admin_client, admin_user, operator_user):
    model = _model(operator_user)
    first, second = _version(model, 1), _version(model, 2)
    services.alias_move(model=model, name="staging", version=first, actor=operator_user)

    asked = _action(admin_client, "set_alias", [second])
    assert asked.status_code == 200
    assert "Set or move an alias" in asked.content.decode()
    assert ModelAlias.objects.get(model=model, name="staging").version == first

    response = _action(admin_client, "set_alias", [second], apply="yes", alias="staging")

    assert response.status_code == 302
    assert ModelAlias.objects.get(model=model, name="staging").version == second
    assert _messages(response) == [("success", "sentiment v2: alias staging moved from v1 to this version.")]
    event = AuditEvent.objects.filter(action="registry.alias.moved").order_by("id").last()
    assert (event.actor, event.changes["version"]) == (admin_user, [1, 2])


@pytest.mark.django_db
def test_alias_action_refuses_two_versions_of_one_model_and_a_malformed_alias(admin_client, operator_user):
    model = _model(operator_user)
    versions = [_version(model, 1), _version(model, 2)]

    both = _action(admin_client, "set_alias", versions, apply="yes", alias="staging")
    malformed = _action(admin_client, "set_alias", versions[:1], apply="yes", alias="Not An Alias")

    assert _messages(both) == [
        (
            "error",
            "An alias points at one version of a model; select one version of sentiment. Nothing was changed.",
        )
    ]
    assert malformed.status_code == 200
    assert "lowercase letters" in malformed.context["form"].errors["alias"][0]
    assert not ModelAlias.objects.exists()


@pytest.mark.django_db
def test_staff_operator_moves_staging_of_own_model_but_is_refused_production_with_the_reason(
    client, roles, operator_user
):
    model = _model(operator_user)
    version = _version(model, 1)
    staff_force_login(client, operator_user)

    production = _action(client, "set_alias", [version], apply="yes", alias="production")
    assert _messages(production) == [("warning", "sentiment v1: Moving the production alias needs the admin role.")]
    client.get(production["Location"])  # shows, and so clears, the message

    staging = _action(client, "set_alias", [version], apply="yes", alias="staging")
    assert _messages(staging) == [("success", "sentiment v1: alias staging set to this version.")]
    assert list(ModelAlias.objects.values_list("name", flat=True)) == ["staging"]


@pytest.mark.django_db
def test_archive_action_archives_a_version_and_refuses_one_an_alias_points_at(admin_client, operator_user):
    model = _model(operator_user)
    aliased, spare = _version(model, 1), _version(model, 2)
    services.alias_move(model=model, name="staging", version=aliased, actor=operator_user)

    response = _action(admin_client, "archive_versions", [aliased, spare])

    spare.refresh_from_db()
    aliased.refresh_from_db()
    assert spare.archived_at is not None
    assert aliased.archived_at is None
    assert _messages(response) == [
        (
            "warning",
            "sentiment v1 is still the target of the alias(es) staging; move them first.",
        ),
        ("success", "sentiment v2: archived; it can no longer be used."),
    ]
    assert AuditEvent.objects.filter(action="registry.version.archived", object_id=str(spare.pk)).exists()
    assert "Archived" in admin_client.get(f"{MODELS_URL}{model.pk}/change/").content.decode()


@pytest.mark.django_db
def test_an_action_on_more_versions_than_the_limit_changes_nothing_and_names_the_limit(
    admin_client, operator_user, monkeypatch
):
    monkeypatch.setattr(registry_admin, "MAX_ACTION_OBJECTS", 2)
    model = _model(operator_user)
    versions = [_version(model, number) for number in (1, 2, 3)]

    response = _action(admin_client, "archive_versions", versions)

    assert _messages(response) == [
        (
            "error",
            "More than 2 model versions were selected; an action handles at most 2 at a time. "
            "Narrow the list with a filter or a search.",
        )
    ]
    assert not ModelVersion.objects.filter(archived_at__isnull=False).exists()


@pytest.mark.django_db
def test_revalidate_action_puts_an_invalid_version_back_to_validating(admin_client, operator_user):
    version = _version(_model(operator_user), 1, status=VersionStatus.INVALID, status_reason="No tokenizer.")

    response = _action(admin_client, "revalidate_versions", [version])

    version.refresh_from_db()
    assert (version.status, version.status_reason) == (VersionStatus.VALIDATING, "")
    assert _messages(response) == [("success", "sentiment v1: validation started again.")]


@pytest.mark.django_db
def test_evaluation_action_asks_for_a_file_and_queues_an_evaluation_job_of_each_version(
    admin_client, admin_user, operator_user, storage
):
    model = _model(operator_user)
    versions = [_version(model, 1), _version(model, 2)]

    asked = _action(admin_client, "run_evaluation", versions)
    assert asked.status_code == 200
    assert 'enctype="multipart/form-data"' in asked.content.decode()

    response = _action(
        admin_client, "run_evaluation", versions, apply="yes", name="weekly", data=_upload(LABELLED_CSV, "eval.csv")
    )

    jobs = list(InferenceJob.objects.order_by("id"))
    assert [(job.version, job.kind, job.progress_total, job.owner, job.name) for job in jobs] == [
        (version, InferenceKind.EVALUATION, 3, admin_user, "weekly") for version in versions
    ]
    assert _messages(response) == [
        ("success", f"sentiment v{version.version}: evaluation job #{job.pk} queued over 3 rows.")
        for version, job in zip(versions, jobs, strict=True)
    ]


@pytest.mark.django_db
def test_evaluation_action_on_a_version_that_is_not_ready_says_why_and_queues_nothing(admin_client, operator_user):
    version = _version(_model(operator_user), 1, status=VersionStatus.VALIDATING)

    response = _action(admin_client, "run_evaluation", [version], apply="yes", data=_upload(LABELLED_CSV, "eval.csv"))

    assert _messages(response) == [("warning", "sentiment v1 is validating and cannot be used.")]
    assert not InferenceJob.objects.exists()


@pytest.mark.django_db
def test_staff_viewer_reads_the_registry_but_gets_no_actions(client, roles, viewer_user, operator_user):
    model = _model(operator_user)
    version = _version(model, 1)
    staff_force_login(client, viewer_user)

    for url in (MODELS_URL, f"{MODELS_URL}{model.pk}/change/", VERSIONS_URL, f"{VERSIONS_URL}{version.pk}/change/"):
        assert client.get(url).status_code == 200, url
    assert 'name="action"' not in client.get(VERSIONS_URL).content.decode()
    _action(client, "archive_versions", [version])
    assert ModelVersion.objects.get(pk=version.pk).archived_at is None


# --- Inference jobs


@pytest.mark.django_db
def test_job_page_shows_progress_and_metrics_and_cancel_action_cancels_a_queued_job(
    admin_client, admin_user, operator_user, storage
):
    model = _model(operator_user)
    _version(model, 1)
    queued = inference_job_create(owner=operator_user, model=model, upload=_upload(LABELLED_CSV, "e.csv"), number=1)
    done = inference_job_create(owner=operator_user, model=model, upload=_upload(LABELLED_CSV, "e.csv"), number=1)
    metrics = {"rows": 3, "accuracy": 2 / 3, "macro_f1": 0.5, "confusion_matrix": {"labels": ["a"], "matrix": [[3]]}}
    InferenceJob.objects.filter(pk=done.pk).update(status=JobStatus.COMPLETED, progress_done=3, metrics=metrics)

    page = admin_client.get(f"{JOBS_URL}{done.pk}/change/").content.decode()
    assert "3 / 3 (100%)" in page
    assert "accuracy 0.667, macro-F1 0.500 over 3 rows" in page
    assert "<tr><th>a</th><td>3</td></tr>" in page
    assert done.input_file.name in page
    assert "/media/" not in page  # stored files are not served; no link that leads nowhere

    response = _action(admin_client, "cancel_jobs", [queued, done], url=JOBS_URL)

    assert InferenceJob.objects.get(pk=queued.pk).status == JobStatus.CANCELLED
    assert InferenceJob.objects.get(pk=done.pk).status == JobStatus.COMPLETED
    assert _messages(response) == [
        ("success", f"Inference job #{queued.pk}: cancelled."),
        (
            "warning",
            f"Inference job #{done.pk}: Job #{done.pk} is already completed; there is nothing to cancel.",
        ),
    ]
    assert AuditEvent.objects.filter(action="registry.job.cancelled", actor=admin_user).exists()


@pytest.mark.django_db
def test_staff_operator_sees_only_own_jobs_and_jobs_cannot_be_added_in_the_admin(client, roles, operator_user, storage):
    other = UserFactory(username="olga-operator", roles=["operator"])
    model = _model(other)
    _version(model, 1)
    others = inference_job_create(owner=other, model=model, upload=_upload(LABELLED_CSV, "e.csv"), number=1)
    own = inference_job_create(owner=operator_user, model=model, upload=_upload(LABELLED_CSV, "e.csv"), number=1)
    staff_force_login(client, operator_user)

    assert [job.pk for job in client.get(JOBS_URL).context["cl"].result_list] == [own.pk]
    assert client.get(f"{JOBS_URL}{others.pk}/change/").status_code == 302  # "does not exist"
    assert client.get(f"{JOBS_URL}add/").status_code == 403


# --- Roles


@pytest.mark.django_db
def test_roles_give_operators_registering_and_running_viewers_reading_and_compliance_nothing(roles):
    def registry_permissions(role: str) -> set[str]:
        group = Group.objects.get(name=role)
        return set(group.permissions.filter(content_type__app_label="registry").values_list("codename", flat=True))

    assert registry_permissions("operator") == {
        "view_registeredmodel",
        "add_registeredmodel",
        "view_modelversion",
        "add_modelversion",
        "view_modelalias",
        "view_inferencejob",
        "add_inferencejob",
    }
    assert registry_permissions("viewer") == {
        "view_registeredmodel",
        "view_modelversion",
        "view_modelalias",
        "view_inferencejob",
    }
    assert registry_permissions("compliance") == set()
    assert registry_permissions("admin") == set(
        Permission.objects.filter(content_type__app_label="registry").values_list("codename", flat=True)
    )
