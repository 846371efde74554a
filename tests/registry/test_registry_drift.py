"""Drift watch: real predictions of the tiny model counted per hour and compared with the version's evaluation by PSI;
a drifting version is announced once a day, exposed as a metric, badged and charted on its page and in the API."""

import csv
import io
import json
import random
import re
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.registry.drift import LENGTH_BINS, drift_check, drift_observe, drift_report, length_bin, psi
from apps.registry.inference import inference_job_create, inference_job_result, inference_job_run
from apps.registry.models import DriftCount
from apps.registry.services import alias_move, model_register, predict, version_upload, version_validate
from tests.core.test_metrics import _sample
from tests.registry_models import SENTENCES, build_tiny_classifier, pack_zip

pytestmark = pytest.mark.usefixtures("registry_storage")

LABELS = ("negative", "positive")


def _everyday(count: int, seed: int) -> list[str]:
    """Texts like the ones the model was evaluated on: a sentence of the training set, sometimes two."""
    rng = random.Random(seed)  # noqa: S311 - reproducible texts, not secrets
    return [" and ".join(rng.sample(SENTENCES, rng.choice((1, 1, 2)))) for _ in range(count)]


def _very_long(count: int, seed: int) -> list[str]:
    """Pasted documents instead of one-line tickets: 600 to 3,000 characters."""
    rng = random.Random(seed)  # noqa: S311 - reproducible texts, not secrets
    return [" ".join(rng.choices(SENTENCES, k=rng.randint(20, 90)))[:3000] for _ in range(count)]


@pytest.fixture
def sentiment(operator_user):
    return model_register(owner=operator_user, name="sentiment", task="text-classification")


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("drift") / "model", labels=LABELS)


def _version(model, folder, owner):
    version = version_upload(model=model, upload=io.BytesIO(pack_zip(folder)), actor=owner)
    version_validate(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return version


def _evaluate(owner, model, version, texts: list[str]):
    """Run an evaluation job (every row labelled) on ``version`` here; returns the job."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    writer.writerows((text, LABELS[index % 2]) for index, text in enumerate(texts))
    upload = io.BytesIO(buffer.getvalue().encode())
    upload.name = "evaluation.csv"
    job = inference_job_create(owner=owner, model=model, upload=upload, number=version.version)
    message = inference_job_run(job_id=job.pk, task_id=f"evaluation-{job.pk}", worker="here")
    job.refresh_from_db()
    assert (job.kind, job.status) == ("evaluation", "completed"), message
    version.refresh_from_db()
    return job


def _predict_all(model, alias: str, texts: list[str], actor) -> list[dict]:
    outputs = []
    for start in range(0, len(texts), 50):
        outputs += predict(model=model, inputs=texts[start : start + 50], actor=actor, alias=alias)["outputs"]
    return outputs


def _announced() -> list[dict]:
    rows = AuditEvent.objects.filter(action="notification.model.drift").order_by("id")
    return [{"object_id": row.object_id, **json.loads(row.changes_text or "{}")} for row in rows]


def test_evaluation_stores_the_distributions_of_predicted_labels_and_input_lengths_as_reference(
    operator_user, sentiment, classifier_dir
):
    version = _version(sentiment, classifier_dir, operator_user)
    texts = _everyday(300, seed=1) + _very_long(20, seed=2)

    job = _evaluate(operator_user, sentiment, version, texts)

    file, _, _ = inference_job_result(job)
    with file:
        rows = list(csv.DictReader(io.StringIO(file.read().decode())))
    version.refresh_from_db()
    reference = version.metrics["evaluation"]["reference"]
    predicted = {label: sum(row["predicted_label"] == label for row in rows) for label in LABELS}
    assert reference["label"] == {label: count for label, count in predicted.items() if count}
    lengths = {}
    for text in texts:
        lengths[length_bin(text)] = lengths.get(length_bin(text), 0) + 1
    assert reference["input_length"] == lengths
    assert sum(reference["input_length"].values()) == 320
    assert (
        "reference"
        not in json.loads(
            AuditEvent.objects.filter(action="registry.job.completed", object_id=str(job.pk)).get().changes_text
        )["metrics"]
    )


def test_shifted_predictions_drift_and_are_announced_once_while_in_distribution_ones_do_not(
    operator_user, admin_user, sentiment, classifier_dir, client, settings
):
    settings.REGISTRY_DRIFT_WINDOW_HOURS = 48  # so that tomorrow's check still sees today's predictions
    steady = _version(sentiment, classifier_dir, operator_user)
    shifted = _version(sentiment, classifier_dir, operator_user)
    for version in (steady, shifted):
        _evaluate(operator_user, sentiment, version, _everyday(400, seed=version.version))
    alias_move(model=sentiment, name="staging", version=steady, actor=operator_user)
    alias_move(model=sentiment, name="production", version=shifted, actor=admin_user)

    _predict_all(sentiment, "staging", _everyday(300, seed=10), operator_user)
    _predict_all(sentiment, "production", _everyday(60, seed=11) + _very_long(240, seed=12), operator_user)
    message = drift_check()

    calm, drifting = drift_report(steady), drift_report(shifted)
    assert (calm.status, calm.predictions) == ("ok", 300)
    assert all(feature.psi < 0.1 for feature in calm.features), [(f.feature, f.psi) for f in calm.features]
    assert (drifting.status, drifting.predictions) == ("drift", 300)
    by_feature = {feature.feature: feature for feature in drifting.features}
    assert by_feature["input_length"].psi > 0.25
    assert message == f"Checked 2 versions; drifting: {shifted}."
    (event,) = _announced()
    assert event["object_id"] == str(shifted.pk)
    assert event["summary"].startswith(f"{shifted} drifts from its evaluation: PSI ")
    assert "on input_length (threshold 0.25) over 300 predictions in the last 48 h" in event["summary"]

    # Metric: the PSI of each feature of each watched version.
    client.force_login(operator_user)
    metrics = client.get("/metrics").content.decode()
    gauge = "registry_drift_psi"
    assert _sample(metrics, gauge, model="sentiment", version="2", feature="input_length") == pytest.approx(
        by_feature["input_length"].psi
    )
    assert _sample(metrics, gauge, model="sentiment", version="1", feature="input_length") < 0.1
    assert _sample(metrics, gauge, model="sentiment", version="1", feature="label") < 0.1

    # Once a day per version, however often it is checked.
    assert drift_check() == message
    assert len(_announced()) == 1
    drift_check(now=timezone.now() + timedelta(days=1, minutes=1))
    assert [event["object_id"] for event in _announced()] == [str(shifted.pk)] * 2


def test_the_model_page_and_the_api_show_each_versions_drift(
    operator_user, admin_user, sentiment, classifier_dir, client, settings
):
    settings.REGISTRY_DRIFT_MIN_PREDICTIONS = 50
    steady = _version(sentiment, classifier_dir, operator_user)
    shifted = _version(sentiment, classifier_dir, operator_user)
    fresh = _version(sentiment, classifier_dir, operator_user)  # behind an alias, never evaluated
    for version in (steady, shifted):
        _evaluate(operator_user, sentiment, version, _everyday(200, seed=version.version))
    alias_move(model=sentiment, name="staging", version=steady, actor=operator_user)
    alias_move(model=sentiment, name="production", version=shifted, actor=admin_user)
    alias_move(model=sentiment, name="canary", version=fresh, actor=operator_user)
    _predict_all(sentiment, "staging", _everyday(100, seed=20), operator_user)
    _predict_all(sentiment, "production", _very_long(100, seed=21), operator_user)
    _predict_all(sentiment, "canary", _everyday(10, seed=22), operator_user)
    client.force_login(operator_user)

    page = client.get("/registry/sentiment/").content.decode()

    section = page[page.index('<section class="card" id="drift">') :].split("</section>")[0]
    blocks = {
        int(re.search(r'data-version="(\d+)"', piece).group(1)): piece
        for piece in section.split('<div class="drift-version"')[1:]
    }
    assert set(blocks) == {steady.version, shifted.version, fresh.version}
    for version, status, badge in (
        (steady, "ok", ">No drift · PSI 0.0"),
        (shifted, "drift", ">Drift · PSI "),
        (fresh, "no_reference", ">No reference</span>"),
    ):
        assert f'data-drift-status="{status}"' in blocks[version.version]
        assert badge in blocks[version.version]
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="drift-chart" role="img"' in blocks[shifted.version]
    assert "Input length (characters): last 24 h against the evaluation" in blocks[shifted.version]
    assert 'fill="#b42318"' in blocks[shifted.version]  # the window's bars in the drift colour
    assert 'fill="#b42318"' not in blocks[steady.version]

    body = client.get(f"/api/v1/registry/models/sentiment/versions/{shifted.version}/").json()
    assert body["drift"]["status"] == "drift"
    assert body["drift"]["predictions"] == 100
    assert body["drift"]["thresholds"] == {"warn": 0.1, "drift": 0.25}
    lengths = body["drift"]["features"]["input_length"]
    assert lengths["psi"] > 0.25
    assert [item["bin"] for item in lengths["bins"]] == [
        name for name in LENGTH_BINS if name in {item["bin"] for item in lengths["bins"]}
    ]
    assert sum(item["window"] for item in lengths["bins"]) == pytest.approx(1, abs=1e-3)
    model = client.get("/api/v1/registry/models/sentiment/").json()
    statuses = {item["version"]: item["drift"]["status"] for item in model["versions"]}
    assert statuses == {steady.version: "ok", shifted.version: "drift", fresh.version: "no_reference"}


def test_a_version_with_too_few_predictions_is_not_judged(operator_user, sentiment, classifier_dir, settings):
    settings.REGISTRY_DRIFT_MIN_PREDICTIONS = 100
    version = _version(sentiment, classifier_dir, operator_user)
    _evaluate(operator_user, sentiment, version, _everyday(100, seed=3))
    predict(model=sentiment, inputs=_very_long(40, seed=4), actor=operator_user, number=version.version)

    report = drift_report(version)

    assert (report.status, report.predictions) == ("too_few_predictions", 40)
    assert all(feature.psi is None for feature in report.features)
    assert drift_check() == "Checked 1 version; no drift."
    assert _announced() == []


def test_psi_is_zero_for_the_same_distribution_and_grows_with_the_shift():
    assert psi({"a": 50, "b": 50}, {"a": 5, "b": 5}) == 0
    assert psi({"a": 50, "b": 50}, {"a": 90, "b": 10}) == pytest.approx(0.4 * 0.587787 + 0.4 * 1.609438, rel=1e-5)
    # A bin the reference never saw counts, at a share of 0.0001, rather than dividing by zero.
    assert psi({"a": 100}, {"a": 50, "b": 50}) > 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_predictions_add_up_in_one_row_per_hour_and_bin(operator_user, sentiment, classifier_dir):
    version = _version(sentiment, classifier_dir, operator_user)
    texts = ["short text", "x" * 100]
    outputs = [{"label": "positive", "score": 0.6}, {"label": "negative", "score": 0.7}]

    def client():
        try:
            for _ in range(50):
                drift_observe(version=version, texts=texts, outputs=outputs)
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    rows = DriftCount.objects.filter(version=version)
    assert sorted(rows.values_list("feature", "value", "predictions")) == [
        ("input_length", "0-15", 200),
        ("input_length", "64-127", 200),
        ("label", "negative", 200),
        ("label", "positive", 200),
    ]
