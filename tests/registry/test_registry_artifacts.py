"""Extracting uploaded model artifacts: good archives unpack to a loadable model, bad ones leave nothing."""

import hashlib
import io
import json

import huggingface_hub
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile, TemporaryUploadedFile
from transformers import pipeline

from apps.registry.artifacts import ArtifactError, artifact_extract
from tests.registry_models import (
    BAD_ARTIFACTS,
    MIB,
    build_tiny_classifier,
    build_tiny_fill_mask,
    pack_tar_gz,
    pack_zip,
    pickle_weights_zip,
    zip_bomb,
)

LIMITS = {"max_bytes": 10 * MIB, "max_files": 200, "max_uncompressed_bytes": 10 * MIB, "allow_pickle": False}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return build_tiny_classifier(tmp_path_factory.mktemp("tiny") / "model")


def extract(data: bytes, destination, **limits):
    return artifact_extract(io.BytesIO(data), destination, **(LIMITS | limits))


def model_files(folder) -> list[str]:
    return sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize(
    "pack",
    [
        pack_zip,
        lambda folder: pack_zip(folder, top_level_dir="my-model"),
        pack_tar_gz,
        lambda folder: pack_tar_gz(folder, top_level_dir="my-model"),
    ],
    ids=["zip", "zip with top-level folder", "tar.gz", "tar.gz with top-level folder"],
)
def test_model_archive_unpacks_into_destination_with_checksum_and_weights(tiny_model, tmp_path, pack):
    data = pack(tiny_model)
    destination = tmp_path / "v1"

    extracted = extract(data, destination)

    assert extracted.root == destination
    assert extracted.files == model_files(tiny_model) == model_files(destination)
    assert "config.json" in extracted.files
    assert extracted.sha256 == hashlib.sha256(data).hexdigest()
    assert extracted.size == len(data)
    assert extracted.total_bytes == sum((tiny_model / name).stat().st_size for name in extracted.files)
    assert extracted.weight_files == ["model.safetensors"]
    assert not extracted.has_pickle_weights
    for name in extracted.files:
        assert (destination / name).read_bytes() == (tiny_model / name).read_bytes()


def test_source_is_read_from_its_start_whatever_its_position(tiny_model, tmp_path):
    data = pack_zip(tiny_model)
    upload = io.BytesIO(data)
    upload.seek(len(data) // 2)

    extracted = artifact_extract(upload, tmp_path / "v1", **LIMITS)

    assert extracted.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("upload_class", [SimpleUploadedFile, TemporaryUploadedFile])
def test_django_upload_stays_readable_after_extraction_so_it_can_be_stored(tiny_model, tmp_path, upload_class):
    data = pack_tar_gz(tiny_model)
    if upload_class is SimpleUploadedFile:
        upload = SimpleUploadedFile("model.tar.gz", data)
    else:
        upload = TemporaryUploadedFile("model.tar.gz", "application/gzip", len(data), None)
        upload.write(data)

    extracted = artifact_extract(upload, tmp_path / "v1", **LIMITS)

    upload.seek(0)
    assert upload.read() == data
    assert extracted.size == len(data)
    upload.close()


def test_extracted_model_loads_offline_and_predicts_one_label_per_input(tiny_model, tmp_path):
    extracted = extract(pack_zip(tiny_model, top_level_dir="my-model"), tmp_path / "v1")

    assert huggingface_hub.constants.HF_HUB_OFFLINE, "the settings must switch the hub off before transformers loads"
    classify = pipeline("text-classification", model=str(extracted.root), tokenizer=str(extracted.root))
    outputs = classify(["the service is great", "nothing works", "a sentence with unseen words"])

    assert len(outputs) == 3
    assert {output["label"] for output in outputs} <= {"negative", "positive"}


def test_fill_mask_model_is_a_sound_artifact_with_a_masked_lm_architecture(tmp_path):
    folder = build_tiny_fill_mask(tmp_path / "fill-mask")

    extracted = extract(pack_zip(folder), tmp_path / "v1")

    config = json.loads((extracted.root / "config.json").read_text())
    assert config["architectures"] == ["BertForMaskedLM"]
    fill = pipeline("fill-mask", model=str(extracted.root), tokenizer=str(extracted.root))
    assert len(fill("the service is [MASK]")) == 5


@pytest.mark.parametrize("bad", BAD_ARTIFACTS, ids=[bad.name for bad in BAD_ARTIFACTS])
def test_bad_artifact_is_refused_with_a_clear_message_and_leaves_nothing(tiny_model, tmp_path, bad):
    destination = tmp_path / "incoming" / "v1"

    with pytest.raises(ArtifactError) as refused:
        extract(bad.build(tiny_model), destination)

    assert refused.value.status == bad.status
    for keyword in bad.keywords:
        assert keyword.lower() in refused.value.message.lower()
    assert not destination.exists()
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "incoming" / "evil.txt").exists()


def test_archive_over_size_limit_is_refused_with_413_before_anything_is_written(tiny_model, tmp_path):
    data = pack_zip(tiny_model)
    destination = tmp_path / "v1"

    with pytest.raises(ArtifactError) as refused:
        extract(data, destination, max_bytes=len(data) - 1)

    assert refused.value.status == 413
    assert f"{len(data) - 1:,} bytes" in refused.value.message
    assert "the upload limit" in refused.value.message
    assert not destination.exists()


def test_size_limits_are_named_in_megabytes(tiny_model, tmp_path):
    with pytest.raises(ArtifactError) as refused:
        extract(zip_bomb(tiny_model, zeros=3 * MIB), tmp_path / "v1", max_uncompressed_bytes=2 * MIB)

    assert "more than 2 MB," in refused.value.message


def test_declared_sizes_over_the_limit_are_refused_before_reading_the_entries(tiny_model, tmp_path):
    # The entry holds 1,000 bytes but claims 20 MB: only the declared sizes can tell.
    with pytest.raises(ArtifactError) as refused:
        extract(zip_bomb(tiny_model, zeros=1000, declared_size=20 * MIB), tmp_path / "v1")

    assert refused.value.status == 413
    assert "the limit for its contents" in refused.value.message


def test_archive_at_its_limits_is_accepted(tiny_model, tmp_path):
    data = pack_zip(tiny_model)
    files = model_files(tiny_model)
    unpacked = sum((tiny_model / name).stat().st_size for name in files)

    extracted = extract(
        data, tmp_path / "v1", max_bytes=len(data), max_files=len(files), max_uncompressed_bytes=unpacked
    )

    assert extracted.total_bytes == unpacked


def test_pickle_weights_are_accepted_when_allowed(tiny_model, tmp_path):
    extracted = extract(pickle_weights_zip(tiny_model), tmp_path / "v1", allow_pickle=True)

    assert extracted.weight_files == ["pytorch_model.bin"]
    assert extracted.has_pickle_weights


def test_refused_artifact_leaves_an_existing_empty_destination_empty(tiny_model, tmp_path):
    destination = tmp_path / "v1"
    destination.mkdir()

    with pytest.raises(ArtifactError):
        extract(zip_bomb(tiny_model, declared_size=1000), destination)

    assert list(destination.iterdir()) == []


def test_destination_holding_files_is_not_used(tiny_model, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")

    with pytest.raises(ValueError, match="not empty"):
        extract(pack_zip(tiny_model), tmp_path)

    assert (tmp_path / "keep.txt").read_text() == "mine"
