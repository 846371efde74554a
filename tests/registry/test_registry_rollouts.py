"""Rollouts: an alias split between two versions by weight, assigned per caller, promoted, rolled back, removed."""

import io
from collections import Counter
from pathlib import Path

import pytest
import torch
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.core.choices import Role
from apps.registry.models import ModelVersion, RegisteredModel
from apps.registry.services import model_register, version_resolve, version_upload, version_validate
from tests.core.test_metrics import _sample
from tests.factories import UserFactory
from tests.helpers import api_error
from tests.registry_models import build_tiny_classifier, pack_zip

pytestmark = [pytest.mark.usefixtures("registry_storage"), pytest.mark.django_db]

MODEL_URL = "/api/v1/registry/models/sentiment/"
ALIASES_URL = MODEL_URL + "aliases/"
# Each version says different labels, so an output shows which version really answered.
LABELS = {1: ("negative", "positive"), 2: ("ham", "spam", "eggs"), 3: ("low", "high")}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[int, Path]:
    return {
        number: build_tiny_classifier(tmp_path_factory.mktemp(f"v{number}") / "model", labels=labels)
        for number, labels in LABELS.items()
    }


@pytest.fixture
def sentiment(operator_user) -> RegisteredModel:
    return model_register(owner=operator_user, name="sentiment", task="text-classification")


def _ready(model: RegisteredModel, folder: Path, actor) -> ModelVersion:
    version = version_upload(model=model, upload=io.BytesIO(pack_zip(folder)), actor=actor)
    version_validate(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return version


@pytest.fixture
def versions(sentiment, operator_user, folders) -> list[ModelVersion]:
    return [_ready(sentiment, folders[1], operator_user), _ready(sentiment, folders[2], operator_user)]


@pytest.fixture
def admin(admin_user) -> APIClient:
    return _client(admin_user)


@pytest.fixture
def operator(operator_user) -> APIClient:
    return _client(operator_user)


def _split(client: APIClient, alias: str, *weights: tuple[int, int]):
    body = {"alias": alias, "versions": [{"version": number, "weight": weight} for number, weight in weights]}
    return client.post(ALIASES_URL, body, format="json")


def _predict(client: APIClient, **body) -> dict:
    response = client.post(MODEL_URL + "predict/", {"inputs": ["the queue is stuck"], **body}, format="json")
    assert response.status_code == 200, response.content
    answer = response.json()
    # The labels prove the version named in the answer is the one that ran.
    assert answer["outputs"][0]["label"] in LABELS[answer["version"]]
    return answer


def _metrics(client) -> str:
    return client.get("/metrics").content.decode()


@pytest.fixture
def one_torch_thread():
    """1,060 one-text predictions: on two shared cores torch's thread pool costs more than it gives a tiny model."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_torch_thread")
def test_a_90_10_alias_splits_1000_callers_within_3_points_and_each_caller_sticks(admin, versions, client):
    split = _split(admin, "production", (1, 90), (2, 10))
    assert split.status_code == 200, split.content
    assert split.json()["versions"] == [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]
    assert split.json()["canary"] == 2
    before = _metrics(client)

    answered = {f"user-{index}": _predict(admin, caller_key=f"user-{index}")["version"] for index in range(1000)}

    counts = Counter(answered.values())
    assert set(counts) == {1, 2}
    assert abs(counts[2] / 1000 - 0.10) <= 0.03, counts
    # Sticky: the same caller gets the same version every time.
    for key in [f"user-{index}" for index in range(0, 1000, 50)]:
        assert {_predict(admin, caller_key=key)["version"] for _ in range(3)} == {answered[key]}
    # Each side of the rollout is counted under its own version.
    after = _metrics(client)
    for number in (1, 2):
        labels = {"model": "sentiment", "alias": "production", "version": str(number)}
        calls = counts[number] + sum(3 for key in list(answered)[::50] if answered[key] == number)
        ok_before = _sample(before, "registry_alias_predictions_total", **labels, outcome="ok") or 0
        assert _sample(after, "registry_alias_predictions_total", **labels, outcome="ok") - ok_before == calls
        count_before = _sample(before, "registry_alias_prediction_latency_seconds_count", **labels) or 0
        assert _sample(after, "registry_alias_prediction_latency_seconds_count", **labels) - count_before == calls
    # The audit trail records which version answered each prediction.
    recorded = Counter(event.changes["version"] for event in AuditEvent.objects.filter(action="registry.prediction"))
    assert recorded[2] >= counts[2]


@pytest.mark.usefixtures("one_torch_thread")
def test_without_a_caller_key_the_request_id_decides(admin, versions):
    assert _split(admin, "production", (1, 50), (2, 50)).status_code == 200

    def by_request_id(request_id: str) -> int:
        response = admin.post(
            MODEL_URL + "predict/", {"inputs": ["fine"]}, format="json", headers={"X-Request-ID": request_id}
        )
        assert response.status_code == 200, response.content
        return response.json()["version"]

    assert len({by_request_id("req-fixed") for _ in range(5)}) == 1
    answered = Counter(by_request_id(f"req-{index}") for index in range(200))
    assert 0.38 <= answered[1] / 200 <= 0.62, answered


def test_the_stable_version_is_the_one_already_served_and_batch_jobs_use_it(admin, operator, versions, sentiment):
    assert operator.post(ALIASES_URL, {"alias": "staging", "version": 2}, format="json").status_code == 200
    # v2 keeps being the stable version although it now takes only 40 %.
    split = _split(operator, "staging", (1, 60), (2, 40)).json()
    assert (split["version"], split["canary"], split["versions"]) == (
        2,
        1,
        [{"version": 2, "weight": 40}, {"version": 1, "weight": 60}],
    )
    # Without a caller (a batch job) the stable version answers.
    assert version_resolve(model=sentiment, alias="staging").version == 2
    # A new alias split at once: the heavier version is the stable one.
    assert _split(operator, "canary-test", (2, 30), (1, 70)).json()["version"] == 1


def test_promote_then_rollback_each_in_one_action_audited_and_in_the_history(admin, versions):
    assert admin.post(ALIASES_URL, {"alias": "production", "version": 1}, format="json").status_code == 200
    assert _split(admin, "production", (1, 90), (2, 10)).status_code == 200

    promoted = admin.post(ALIASES_URL + "production/promote/", {}, format="json")
    assert promoted.status_code == 200, promoted.content
    assert (promoted.json()["versions"], promoted.json()["previous_version"]) == ([{"version": 2, "weight": 100}], 1)
    assert {_predict(admin, caller_key=f"c{index}")["version"] for index in range(30)} == {2}

    rolled_back = admin.post(ALIASES_URL + "production/rollback/", format="json")
    assert rolled_back.status_code == 200, rolled_back.content
    assert (rolled_back.json()["versions"], rolled_back.json()["canary"]) == ([{"version": 1, "weight": 100}], None)
    assert {_predict(admin, caller_key=f"c{index}")["version"] for index in range(30)} == {1}

    history = admin.get(ALIASES_URL + "production/history/").json()
    assert history["count"] == 4
    assert [(row["action"], row["before"], row["after"], row["actor"]) for row in history["results"]] == [
        ("rollback", [{"version": 2, "weight": 100}], [{"version": 1, "weight": 100}], "alice-admin"),
        (
            "promote",
            [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
            [{"version": 2, "weight": 100}],
            "alice-admin",
        ),
        (
            "split",
            [{"version": 1, "weight": 100}],
            [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
            "alice-admin",
        ),
        ("set", [], [{"version": 1, "weight": 100}], "alice-admin"),
    ]
    actions = list(AuditEvent.objects.filter(action__startswith="registry.alias.").values_list("action", flat=True))
    for action in ("registry.alias.moved", "registry.alias.split", "registry.alias.promoted"):
        assert action in actions
    assert "registry.alias.rolled_back" in actions
    paged = admin.get(ALIASES_URL + "production/history/", {"page_size": 3}).json()
    assert (len(paged["results"]), paged["next"] is not None) == (3, True)


def test_rollback_during_a_rollout_gives_the_stable_version_everything(admin, versions):
    assert admin.post(ALIASES_URL, {"alias": "production", "version": 1}, format="json").status_code == 200
    assert _split(admin, "production", (1, 50), (2, 50)).status_code == 200
    body = admin.post(ALIASES_URL + "production/rollback/").json()
    assert (body["versions"], body["canary"]) == ([{"version": 1, "weight": 100}], None)


def test_promote_may_name_the_split_version_and_refuses_others(admin, versions, sentiment, operator_user, folders):
    third = _ready(sentiment, folders[3], operator_user)
    assert _split(admin, "production", (1, 80), (2, 20)).status_code == 200
    outside = admin.post(ALIASES_URL + "production/promote/", {"version": third.version}, format="json")
    assert "v3 is not part of production's split (v1 80 % · v2 20 %)" in api_error(outside, 400, "invalid")["detail"]
    kept = admin.post(ALIASES_URL + "production/promote/", {"version": 1}, format="json").json()
    assert kept["versions"] == [{"version": 1, "weight": 100}]
    again = admin.post(ALIASES_URL + "production/promote/", {}, format="json")
    assert api_error(again, 409, "conflict")["detail"] == ("production serves v1 alone; there is no canary to promote.")


def test_rollback_without_an_earlier_version_is_409(admin, versions):
    assert admin.post(ALIASES_URL, {"alias": "production", "version": 1}, format="json").status_code == 200
    refused = admin.post(ALIASES_URL + "production/rollback/")
    assert api_error(refused, 409, "conflict")["detail"] == (
        "production has served only v1; there is no earlier version to roll back to."
    )


@pytest.mark.parametrize(
    ("targets", "status", "message"),
    [
        ([(1, 80), (2, 10)], 400, "The weights of a split must each be 1 to 99 and sum to 100; got 80 + 10."),
        ([(1, 100), (2, 0)], 400, "The weights of a split must each be 1 to 99 and sum to 100; got 100 + 0."),
        ([(1, 50)], 400, "A single version takes all the traffic: its weight must be 100, not 50."),
        ([(1, 40), (2, 30), (1, 30)], 400, "versions must list 1 or 2 versions with their weights."),
        ([(2, 50), (2, 50)], 400, "Version 2 is listed twice; split between two different versions."),
        ([(1, 90), (9, 10)], 400, "sentiment has no version 9."),
        ([(1, 90), (3, 10)], 409, "sentiment v3 is validating; only a ready version can take an alias."),
    ],
    ids=["sum", "zero", "single-not-100", "three", "duplicate", "missing", "not-ready"],
)
def test_bad_splits_are_refused_naming_the_problem(
    admin, versions, sentiment, operator_user, folders, targets, status, message
):
    version_upload(model=sentiment, upload=io.BytesIO(pack_zip(folders[3])), actor=operator_user)  # stays validating
    refused = _split(admin, "production", *targets)
    if status == 400:
        assert api_error(refused, 400, "invalid")["errors"] == {"versions": [message]}
    else:
        assert api_error(refused, 409, "conflict")["detail"] == message
    assert not sentiment.aliases.exists()


def test_version_and_versions_together_are_refused(admin, versions):
    body = {"alias": "staging", "version": 1, "versions": [{"version": 1, "weight": 100}]}
    refused = api_error(admin.post(ALIASES_URL, body, format="json"), 400, "invalid")
    assert refused["errors"]["version"] == ["Give version (one) or versions (a split), not both."]


def test_production_rollouts_need_an_admin_and_readers_only_read(admin, operator, versions, viewer_user, operator_user):
    assert api_error(_split(operator, "production", (1, 90), (2, 10)), 403, "permission_denied")["detail"] == (
        "Moving the production alias needs the admin role."
    )
    assert _split(admin, "production", (1, 90), (2, 10)).status_code == 200
    for path in ("production/promote/", "production/rollback/"):
        assert operator.post(ALIASES_URL + path).status_code == 403
    assert operator.delete(ALIASES_URL + "production/").status_code == 403
    # An operator runs rollouts of other aliases of their own model.
    assert _split(operator, "staging", (1, 50), (2, 50)).status_code == 200
    assert operator.post(ALIASES_URL + "staging/promote/").status_code == 200
    # Another operator may not, readers only read.
    stranger = _client(UserFactory(username="olga-operator", roles=[Role.OPERATOR]))
    assert stranger.post(ALIASES_URL + "staging/rollback/").status_code == 403
    viewer = _client(viewer_user)
    assert viewer.post(ALIASES_URL + "staging/rollback/").status_code == 403
    assert viewer.delete(ALIASES_URL + "staging/").status_code == 403
    listed = viewer.get(ALIASES_URL).json()
    assert [(alias["alias"], alias["versions"]) for alias in listed] == [
        ("production", [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]),
        ("staging", [{"version": 2, "weight": 100}]),
    ]
    detail = viewer.get(MODEL_URL).json()
    assert detail["rollouts"]["production"] == [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]
    assert detail["aliases"] == {"production": 1, "staging": 2}
    assert {version["version"]: version["aliases"] for version in detail["versions"]} == {
        2: ["production", "staging"],
        1: ["production"],
    }


def test_removed_alias_answers_404_and_keeps_its_history(admin, operator, versions):
    assert operator.post(ALIASES_URL, {"alias": "staging", "version": 1}, format="json").status_code == 200
    removed = operator.delete(ALIASES_URL + "staging/")
    assert removed.status_code == 204, removed.content
    predicted = operator.post(MODEL_URL + "predict/", {"inputs": ["fine"], "alias": "staging"}, format="json")
    assert api_error(predicted, 404, "not_found")["detail"] == "sentiment has no alias 'staging'."
    assert operator.get(ALIASES_URL + "staging/").status_code == 404
    assert api_error(operator.delete(ALIASES_URL + "staging/"), 404, "not_found")["detail"] == (
        "sentiment has no alias 'staging'."
    )
    history = operator.get(ALIASES_URL + "staging/history/").json()["results"]
    assert [(row["action"], row["after"]) for row in history] == [
        ("delete", []),
        ("set", [{"version": 1, "weight": 100}]),
    ]
    assert AuditEvent.objects.filter(action="registry.alias.deleted").count() == 1
    never = operator.get(ALIASES_URL + "never/history/")
    assert api_error(never, 404, "not_found")["detail"] == "sentiment has no alias 'never' and never had one."


def test_a_canary_cannot_be_archived(operator, versions):
    assert _split(operator, "staging", (1, 90), (2, 10)).status_code == 200
    refused = operator.post(MODEL_URL + "versions/2/archive/")
    assert api_error(refused, 409, "conflict")["detail"] == (
        "sentiment v2 is still the target of the alias(es) staging; move them first."
    )


def test_caller_key_must_be_a_short_text(operator, versions):
    assert operator.post(ALIASES_URL, {"alias": "staging", "version": 1}, format="json").status_code == 200
    for key in ("", "x" * 201, 7):
        refused = operator.post(
            MODEL_URL + "predict/", {"inputs": ["fine"], "alias": "staging", "caller_key": key}, format="json"
        )
        assert api_error(refused, 400, "invalid")["errors"]["caller_key"] == [
            "caller_key must be a text of 1 to 200 characters."
        ]


def test_admin_shows_each_alias_traffic_rollback_target_and_history(admin_client, admin, versions, sentiment):
    assert admin.post(ALIASES_URL, {"alias": "production", "version": 1}, format="json").status_code == 200
    assert _split(admin, "production", (1, 90), (2, 10)).status_code == 200
    page = admin_client.get(f"/admin/registry/registeredmodel/{sentiment.pk}/change/").content.decode()
    assert "v1 90 % · v2 10 %" in page
    assert "v1 (stable)" in page
    assert "<td>Split between two versions</td><td>v1</td><td>v1 90 % · v2 10 %</td><td>alice-admin</td>" in page
    listed = admin_client.get("/admin/registry/modelversion/").content.decode()
    assert "production (canary 10 %)" in listed
