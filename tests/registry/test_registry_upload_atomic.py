"""A model version appears whole or not at all, for readers on any host: its artifact is complete in storage
before its row can be seen, its folder is renamed into place in one step, and an upload that fails midway leaves
no row, no artifact and no folder, in a local media folder as in a bucket."""

import io
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import connection

from apps.registry import services
from apps.registry.models import ModelVersion
from apps.registry.services import model_register, version_directory, version_upload
from tests.conftest import MEDIA_BUCKET
from tests.registry_models import build_tiny_classifier, pack_zip
from tests.s3 import object_keys

pytestmark = pytest.mark.usefixtures("registry_storage")


class _Failed(Exception):
    """The failure injected midway through an upload."""


@pytest.fixture(scope="module")
def classifier_zip(tmp_path_factory) -> bytes:
    return pack_zip(build_tiny_classifier(tmp_path_factory.mktemp("classifier") / "model"))


@pytest.fixture(params=["local folder", "bucket"])
def media(request, settings) -> Callable[[], list[str]]:
    """Media in the local folder or in a bucket; returns what the storage holds (names of files or objects)."""
    if request.param == "bucket":
        bucket = request.getfixturevalue("media_bucket")
        return lambda: object_keys(bucket, MEDIA_BUCKET)
    return lambda: _files(settings.MEDIA_ROOT)


def _files(root: Path) -> list[str]:
    return (
        sorted(path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()) if root.exists() else []
    )


def _fail_when_audited(monkeypatch, *, then=None) -> None:
    """Make the upload fail after its artifact is stored and its folder placed: at the audit record, the last
    step before the row commits (``then``, if given, runs there first)."""
    record = services.event_record

    def failing(*, action, **fields):
        if action == "registry.version.uploaded":
            if then is not None:
                then()
            raise _Failed("injected")
        return record(action=action, **fields)

    monkeypatch.setattr(services, "event_record", failing)


@pytest.mark.django_db
def test_an_upload_failing_after_its_files_are_placed_leaves_no_version_no_artifact_and_no_folder(
    media, operator_user, classifier_zip, settings, monkeypatch
):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    placed = []
    _fail_when_audited(monkeypatch, then=lambda: placed.append((media(), _files(settings.REGISTRY_DIR))))

    with pytest.raises(_Failed):
        version_upload(model=model, upload=io.BytesIO(classifier_zip), actor=operator_user)

    # Everything was in place when it failed, and nothing is left.
    stored, extracted = placed[0]
    assert len(stored) == 1
    assert "sentiment/v1/config.json" in extracted
    assert not ModelVersion.objects.exists()
    assert media() == []
    assert _files(settings.REGISTRY_DIR) == []


@pytest.mark.django_db
def test_the_same_number_uploaded_again_after_a_failure_replaces_the_leftover_folder(
    operator_user, classifier_zip, settings
):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    # A folder left by an upload under number 1 that failed when this host died: other files, no row.
    leftover = settings.REGISTRY_DIR / "sentiment" / "v1"
    leftover.mkdir(parents=True)
    (leftover / "config.json").write_text("{}")
    (leftover / "stale.txt").write_text("from an upload that failed")

    version = version_upload(model=model, upload=io.BytesIO(classifier_zip), actor=operator_user)

    assert version.version == 1
    assert sorted(_files(version_directory(version))) == sorted(version.files)
    assert _files(settings.REGISTRY_DIR / ".incoming") == []


@pytest.mark.django_db(transaction=True)
def test_readers_see_no_version_until_all_of_it_is_in_place(media, operator_user, classifier_zip, monkeypatch):
    model = model_register(owner=operator_user, name="sentiment", task="text-classification")
    seen = []

    def read_from_another_connection():
        # A reader elsewhere (its own database connection) while the artifact is stored and the folder placed.
        def read():
            try:
                seen.append(list(ModelVersion.objects.filter(model=model).values_list("version", flat=True)))
            finally:
                connection.close()

        reader = threading.Thread(target=read)
        reader.start()
        reader.join(30)

    _fail_when_audited(monkeypatch, then=read_from_another_connection)
    with pytest.raises(_Failed):
        version_upload(model=model, upload=io.BytesIO(classifier_zip), actor=operator_user)
    monkeypatch.undo()
    version = version_upload(model=model, upload=io.BytesIO(classifier_zip), actor=operator_user)

    assert seen == [[]]
    assert ModelVersion.objects.get().pk == version.pk
    assert len(media()) == 1  # the failed upload's artifact is gone


class _ChunksThenFails(io.RawIOBase):
    """An upload stream that gives ``chunks`` pieces, calls ``between`` before each further one, then breaks."""

    def __init__(self, chunks: int, between):
        self.left, self.between = chunks, between

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.left == 0:
            raise OSError("the client went away")
        if self.left < 3:
            self.between()
        self.left -= 1
        buffer[:16] = b"x" * 16
        return 16


@pytest.mark.django_db
def test_a_local_file_is_never_seen_half_written_and_a_failed_write_leaves_nothing(settings):
    media_root = Path(settings.MEDIA_ROOT)
    during = []
    stream = _ChunksThenFails(3, lambda: during.append(_files(media_root)))

    with pytest.raises(OSError, match="the client went away"):
        default_storage.save("registry/artifacts/half", File(stream, name="half"))

    # While it was being written, only a temporary name existed; after the failure, nothing does.
    assert [len(names) for names in during] == [1, 1]
    assert all(names[0].startswith("registry/artifacts/.partial-") for names in during)
    assert _files(media_root) == []

    stored = default_storage.save("registry/artifacts/whole", File(io.BytesIO(b"y" * 100), name="whole"))
    assert _files(media_root) == [stored]
    assert (media_root / stored).read_bytes() == b"y" * 100
