"""Batch jobs of text classifiers run the model directly (texts sorted by token length, padded per forward pass)
and still give, row for row, the synchronous prediction of the same text."""

import csv
import io
import json
import random

import pytest
import torch

from apps.registry.batching import BatchClassifier, _token_batches, batch_classifier
from apps.registry.inference import inference_job_create, inference_job_result, inference_job_run
from apps.registry.loading import model_load, pipelines
from apps.registry.services import model_register, predict, version_upload, version_validate
from tests.registry_models import SENTENCES, build_tiny_classifier, pack_zip

pytestmark = pytest.mark.usefixtures("registry_storage")

WORDS = sorted({word for sentence in SENTENCES for word in sentence.split()} | {"zebra", "quux", "ünïcode", "42"})


def _texts(count: int, seed: int = 3) -> list[str]:
    """Texts of 1 to 40 words, some far past the tiny model's 64 tokens (cut by truncation), some with words the
    tokenizer splits into pieces or does not know."""
    rng = random.Random(seed)  # noqa: S311 - reproducible texts, not secrets
    texts = [" ".join(rng.choices(WORDS, k=rng.randint(1, 40))) for _ in range(count)]
    for index in range(0, count, 37):
        texts[index] = " ".join(rng.choices(WORDS, k=rng.randint(80, 300)))  # 100 to 400 tokens
    return texts


def _ready_version(owner, labels, tmp_path, name="moods"):
    model = model_register(owner=owner, name=name, task="text-classification")
    folder = build_tiny_classifier(tmp_path / name, labels=labels)
    version = version_upload(model=model, upload=io.BytesIO(pack_zip(folder)), actor=owner)
    version_validate(version_id=version.pk)
    version.refresh_from_db()
    assert version.status == "ready", version.status_reason
    return model, version


def _job_rows(owner, model, data: bytes, name: str) -> list[dict]:
    upload = io.BytesIO(data)
    upload.name = name
    job = inference_job_create(owner=owner, model=model, upload=upload, number=1)
    message = inference_job_run(job_id=job.pk, task_id="batching", worker="here")
    job.refresh_from_db()
    assert job.status == "completed", message
    file, filename, _ = inference_job_result(job)
    with file:
        text = file.read().decode()
    if filename.endswith(".csv"):
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines()]


def _synchronous(owner, model, texts: list[str]) -> list[dict]:
    outputs = []
    for start in range(0, len(texts), 64):  # REGISTRY_SYNC_MAX_INPUTS
        outputs += predict(model=model, inputs=texts[start : start + 64], actor=owner, number=1)["outputs"]
    return outputs


@pytest.mark.parametrize(
    "labels",
    [("negative", "positive"), ("bug", "question", "praise"), ("toxic",)],
    ids=["softmax over two labels", "softmax over three labels", "sigmoid of one label"],
)
def test_every_row_of_a_batch_job_equals_the_synchronous_prediction_of_its_text(
    labels, operator_user, tmp_path, registry_storage
):
    # Small batches and passes: many windows, several sorted passes in each, long texts each alone in a pass.
    registry_storage.REGISTRY_JOB_BATCH_SIZE = 96
    registry_storage.REGISTRY_JOB_BATCH_TOKENS = 600
    model, _ = _ready_version(operator_user, labels, tmp_path)
    texts = _texts(400)
    buffer = io.StringIO()
    csv.writer(buffer).writerows([["text"], *([text] for text in texts)])

    rows = _job_rows(operator_user, model, buffer.getvalue().encode(), "texts.csv")
    expected = _synchronous(operator_user, model, texts)

    assert [row["text"] for row in rows] == texts
    assert [row["predicted_label"] for row in rows] == [output["label"] for output in expected]
    assert max(abs(float(row["score"]) - output["score"]) for row, output in zip(rows, expected, strict=True)) < 1e-5
    assert set(expected[0]) == {"label", "score"}
    assert {row["predicted_label"] for row in rows} <= set(labels)


def test_jsonl_job_of_long_texts_in_one_pass_each_matches_predictions(operator_user, tmp_path, registry_storage):
    registry_storage.REGISTRY_JOB_BATCH_TOKENS = 1  # every text alone in its forward pass
    model, _ = _ready_version(operator_user, ("negative", "positive"), tmp_path)
    texts = _texts(60, seed=11)
    data = "".join(json.dumps({"text": text}) + "\n" for text in texts).encode()

    rows = _job_rows(operator_user, model, data, "texts.jsonl")
    expected = _synchronous(operator_user, model, texts)

    assert [(row["text"], row["predicted_label"]) for row in rows] == [
        (text, output["label"]) for text, output in zip(texts, expected, strict=True)
    ]
    assert all(abs(row["score"] - output["score"]) < 1e-5 for row, output in zip(rows, expected, strict=True))


def test_forward_passes_take_texts_of_similar_length_within_the_token_budget_and_restore_their_order(tmp_path):
    loaded = model_load(build_tiny_classifier(tmp_path / "model"), "text-classification").pipeline
    classifier = BatchClassifier(loaded)
    texts = _texts(200, seed=5)
    passes = []
    forward = classifier.model.forward

    def recording(**inputs):
        passes.append(inputs["attention_mask"].clone())
        return forward(**inputs)

    classifier.model.forward = recording
    try:
        outputs = classifier(texts, max_tokens=512)
    finally:
        del classifier.model.forward

    assert len(outputs) == len(texts)
    assert all(mask.numel() <= 512 or mask.shape[0] == 1 for mask in passes)
    lengths = [int(mask.sum(dim=1).max()) for mask in passes]
    assert lengths == sorted(lengths)  # shortest texts first
    assert sum(mask.shape[0] for mask in passes) == len(texts)
    # Sorted, the passes pad far less than passes of the same sizes taken in the file's order would.
    padding = sum(int((mask == 0).sum()) for mask in passes)
    tokens = [len(ids) for ids in loaded.tokenizer(texts, truncation=True)["input_ids"]]
    unsorted, start = 0, 0
    for mask in passes:
        chunk = tokens[start : start + mask.shape[0]]
        unsorted += max(chunk) * len(chunk) - sum(chunk)
        start += mask.shape[0]
    assert padding < unsorted / 4
    direct = [loaded([text])[0] for text in texts]
    assert [output["label"] for output in outputs] == [output["label"] for output in direct]
    assert max(abs(a["score"] - b["score"]) for a, b in zip(outputs, direct, strict=True)) < 1e-5


def test_token_batches_cut_ascending_lengths_by_rows_times_longest_and_keep_a_long_text_alone():
    lengths = [3, 3, 4, 5, 9, 30]
    order = list(range(6))

    assert list(_token_batches(order, lengths, max_tokens=12)) == [[0, 1, 2], [3], [4], [5]]
    assert list(_token_batches(order, lengths, max_tokens=1000)) == [order]


def test_a_pipeline_without_a_pad_token_keeps_the_pipeline_path(tmp_path):
    loaded = model_load(build_tiny_classifier(tmp_path / "model"), "text-classification").pipeline
    assert batch_classifier(loaded) is batch_classifier(loaded)  # made once per loaded pipeline
    loaded.tokenizer.pad_token = None

    assert batch_classifier(loaded) is None


def test_synchronous_prediction_of_a_text_longer_than_the_model_takes_is_cut_not_an_error(operator_user, tmp_path):
    model, version = _ready_version(operator_user, ("negative", "positive"), tmp_path)
    long_text = " ".join(["great service"] * 300)

    outputs = predict(model=model, inputs=[long_text, "fine"], actor=operator_user, number=1)["outputs"]

    assert [output["label"] in ("negative", "positive") for output in outputs] == [True, True]
    cut = pipelines.get(version.pk, tmp_path, "text-classification")  # the one predict() loaded
    tokens = cut.tokenizer(long_text, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        logits = cut.model(**tokens).logits.float()
    assert outputs[0]["score"] == pytest.approx(float(torch.softmax(logits, dim=-1).max()), abs=1e-6)
