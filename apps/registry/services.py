"""Model registry: register models, upload and validate versions, move aliases, predict."""

from __future__ import annotations

import contextlib
import shutil
import time
import uuid
from functools import partial
from pathlib import Path

import markdown
import nh3
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone
from frontmatter.default_handlers import YAMLHandler

from apps.audit.services import event_record
from apps.core.choices import Role
from apps.core.errors import ApplicationError
from apps.core.permissions import WRITE_ROLES, has_role
from apps.core.queueing import QueueUnavailable, enqueue_on_commit
from apps.core.storage import StorageUnavailable
from apps.jobs.kinds import EVERYONE
from apps.jobs.publishing import stream_publish

from .artifacts import ArtifactError, artifact_extract
from .choices import ModelTask, VersionStatus
from .drift import drift_observe
from .loading import ModelLoadError, model_load, pipelines, smoke_input
from .metrics import REGISTRY_PREDICTION_LATENCY, REGISTRY_PREDICTIONS
from .models import ModelAlias, ModelVersion, RegisteredModel, name_validator

PROTECTED_ALIASES = ("production",)
MAX_TAGS = 10


class RegistryError(ApplicationError):
    """A registry request was refused; ``status`` is the HTTP status that fits (400, 403, 404, 409, 413)."""


# --- Permissions


def model_may_change(user, model: RegisteredModel) -> bool:
    """Upload versions, move aliases (except production), archive: the owner (an operator) or an admin."""
    return has_role(user, Role.ADMIN) or (model.owner_id == user.pk and has_role(user, Role.OPERATOR))


def _require_change(user, model: RegisteredModel) -> None:
    if not model_may_change(user, model):
        raise RegistryError(
            f"Only the owner of {model.name} (an operator) or an administrator may change it.", status=403
        )


# --- Models


def model_register(*, owner, name: str, task: str, description: str = "", tags=()) -> RegisteredModel:
    """Register a new model name for a task; operators and admins."""
    if not has_role(owner, *WRITE_ROLES):
        raise RegistryError("Only operators and administrators may register models.", status=403)
    try:
        name_validator(name)
    except Exception as exc:
        raise RegistryError(f"Model name {name!r}: {exc.messages[0]}", field="name") from None
    if task not in ModelTask.values:
        raise RegistryError(f"Unknown task {task!r}; choose one of {', '.join(ModelTask.values)}.", field="task")
    if len(tags) > MAX_TAGS:
        raise RegistryError(f"At most {MAX_TAGS} tags; got {len(tags)}.", field="tags")
    with transaction.atomic():
        if RegisteredModel.objects.filter(name=name).exists():
            raise RegistryError(f"A model named {name!r} already exists.", status=409, field="name")
        model = RegisteredModel.objects.create(
            name=name, task=task, description=description, owner=owner, tags=list(tags)
        )
        event_record(action="registry.model.registered", actor=owner, obj=model, changes={"task": task})
    return model


# --- Versions


def version_directory(version: ModelVersion) -> Path:
    """Where the version's files are extracted on this host (re-extracted from storage when missing)."""
    return settings.REGISTRY_DIR / version.model.name / f"v{version.version}"


def version_upload(*, model: RegisteredModel, upload, actor) -> ModelVersion:
    """Check and extract an uploaded artifact, store it as the next version, and start validation.

    Readers on any host see the whole version or nothing of it: the artifact is complete in storage (an object
    whose upload finished, or a file linked into place once written) before the row naming it is saved, and the
    extracted folder is renamed into place in one step, all before the row commits. A refused upload
    (RegistryError with 400 or 413), a storage that cannot be used (StorageUnavailable, 503) or any failure
    midway leaves no version and no files.
    """
    _require_change(actor, model)
    incoming = _incoming_folder()
    try:
        extracted = _extract(upload, incoming)
    except ArtifactError as exc:
        raise RegistryError(exc.message, status=exc.status, field="artifact") from None
    stored = placed = None
    try:
        with transaction.atomic():
            # The model row serializes uploads, so version numbers never collide.
            RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
            number = (model.versions.order_by("-version").values_list("version", flat=True).first() or 0) + 1
            version = ModelVersion(
                model=model,
                version=number,
                sha256=extracted.sha256,
                size_bytes=extracted.size,
                files=extracted.files,
                card_html=_card_html(extracted.root),
                created_by=actor,
            )
            upload.seek(0)
            version.artifact.save(f"{model.name}-v{number}-{extracted.sha256[:12]}", File(upload), save=False)
            stored = version.artifact.name
            version.save()
            # A folder already there is a leftover of an upload that failed under the same number.
            placed = version_directory(version)
            _put_in_place(extracted.root, placed, replace=True)
            event_record(
                action="registry.version.uploaded",
                actor=actor,
                obj=version,
                changes={"sha256": version.sha256, "size_bytes": version.size_bytes, "files": len(version.files)},
            )
            _validation_queue(version)
    except QueueUnavailable:
        raise  # the version was committed (and marked invalid): it keeps its artifact, to be re-validated
    except BaseException:
        if placed:
            _folder_remove(placed)
        if stored:
            # A storage that failed may fail this too: the artifact then stays behind, named by no version.
            with contextlib.suppress(StorageUnavailable):
                ModelVersion.artifact.field.storage.delete(stored)
        raise
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return version


def _extract(source, destination: Path, *, expected_sha256: str = ""):
    """Check and extract an artifact within the configured limits (ArtifactError when it is refused)."""
    return artifact_extract(
        source,
        destination,
        expected_sha256=expected_sha256,
        max_bytes=settings.REGISTRY_MAX_ARTIFACT_MB * 2**20,
        max_files=settings.REGISTRY_MAX_FILES,
        max_uncompressed_bytes=settings.REGISTRY_MAX_UNCOMPRESSED_MB * 2**20,
        allow_pickle=settings.REGISTRY_ALLOW_PICKLE,
    )


def _validation_queue(version: ModelVersion, *, earlier: tuple[str, str] | None = None) -> None:
    """Queue the version's validation once this commits (QueueUnavailable if the broker refuses it).

    A refused first validation leaves the version invalid; a refused re-validation gives the version back the
    ``earlier`` (status, reason) it had: nothing about it was checked, so nothing about it changed.
    """
    enqueue_on_commit(
        lambda: _validation_enqueue(version.pk),
        refused=partial(_validation_not_queued, version.pk, earlier),
        what=f"the validation of {version}",
        retry="Re-validate it",
        outcome="was not started; the version is marked invalid"
        if earlier is None
        else "was not started; the version keeps its earlier status",
    )


def _validation_enqueue(version_id: int) -> None:
    from .tasks import validate_version  # tasks import this module

    validate_version.delay(version_id)


def _validation_not_queued(version_id: int, earlier: tuple[str, str] | None, reason: str) -> None:
    """After the broker refused its message, a version still validating gets its ``earlier`` status back, or is
    marked invalid (a new upload): no worker would ever validate it, and it should say why rather than look busy
    forever."""
    with transaction.atomic():
        version = (
            ModelVersion.objects.select_for_update(of=("self",))
            .filter(pk=version_id, status=VersionStatus.VALIDATING)
            .select_related("model")
            .first()
        )
        if version is not None and earlier is not None:
            ModelVersion.objects.filter(pk=version.pk).update(status=earlier[0], status_reason=earlier[1])
        elif version is not None:
            _validation_record(version, VersionStatus.INVALID, reason=f"Not validated: {reason}. Re-validate it.")


def _card_html(root: Path) -> str:
    card = root / "README.md"
    if not card.is_file():
        return ""
    text = card.read_text(encoding="utf-8", errors="replace")[:200_000]
    # Hugging Face cards open with a YAML header (license, tags, datasets) for machines: Markdown would show it
    # as a rule and a heading. Split off, not parsed, so that a malformed header is dropped all the same.
    yaml_header = YAMLHandler()
    if yaml_header.detect(text):
        text = yaml_header.split(text)[1]
    # Model cards come from uploaders: rendered Markdown is cleaned of scripts, handlers and styles.
    return nh3.clean(markdown.markdown(text, extensions=["tables", "fenced_code"]))


def version_validate(*, version_id: int) -> str:
    """Load the version strictly offline, check it fits its task, run a smoke prediction; ready or invalid."""
    version = ModelVersion.objects.select_related("model").filter(pk=version_id).first()
    if version is None:
        return f"Version {version_id} no longer exists."
    try:
        loaded = model_load(version_directory_ready(version), version.model.task)
        output = loaded.pipeline([smoke_input(version.model.task, loaded.pipeline)])
        if not output:
            raise ModelLoadError("the smoke prediction returned nothing.")
    except ModelLoadError as exc:
        return _validation_record(version, VersionStatus.INVALID, reason=str(exc))
    except StorageUnavailable as exc:
        return _validation_record(
            version, VersionStatus.INVALID, reason=f"Not validated: {exc.message} Re-validate it."
        )
    version.architectures, version.model_type = loaded.architectures, loaded.model_type
    version.parameter_count, version.labels = loaded.parameter_count, loaded.labels
    version.load_seconds = round(loaded.load_seconds, 4)
    return _validation_record(version, VersionStatus.READY)


def version_directory_ready(version: ModelVersion) -> Path:
    """The extracted files of the version on this host; ModelLoadError when they cannot be had, StorageUnavailable
    when the storage holding its artifact cannot be used.

    REGISTRY_DIR is this host's cache of the artifacts in storage (or every host's, on a shared file system): a
    host that lacks the version extracts its stored artifact, refused unless it matches the SHA-256 recorded at
    upload, into a folder of its own and renames that into place, so a version's folder is complete whenever it
    exists, even with several processes filling it at once.
    """
    directory = version_directory(version)
    if (directory / "config.json").is_file():
        return directory
    incoming = _incoming_folder()
    try:
        # A file of its own: FieldFile.open would share one handle among threads holding the same version.
        with version.artifact.storage.open(version.artifact.name, "rb") as artifact:
            extracted = _extract(artifact, incoming, expected_sha256=version.sha256)
        _put_in_place(extracted.root, directory)
    except FileNotFoundError:
        raise ModelLoadError(f"its artifact {version.artifact.name} is missing from storage.") from None
    except StorageUnavailable:
        raise  # the storage's fault, not the version's: the caller says to try again later
    except ArtifactError as exc:
        raise ModelLoadError(f"its stored artifact was refused: {exc.message}") from None
    except OSError as exc:
        raise ModelLoadError(f"its artifact could not be extracted on this host: {exc.strerror or exc}.") from None
    finally:
        shutil.rmtree(incoming, ignore_errors=True)
    return directory


def _incoming_folder() -> Path:
    """A new folder name under REGISTRY_DIR: extracted there, then renamed into place on the same file system."""
    return settings.REGISTRY_DIR / ".incoming" / uuid.uuid4().hex


def _put_in_place(extracted: Path, directory: Path, *, replace: bool = False) -> None:
    """Rename ``extracted`` to ``directory`` in one step. A complete folder another process put there first is
    kept (it holds the same checked artifact) unless ``replace``; a leftover without config.json is replaced."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    try:
        extracted.rename(directory)
        return
    except OSError:  # the directory exists and is not empty
        if not replace and (directory / "config.json").is_file():
            return
    leftover = _incoming_folder()
    directory.rename(leftover)
    try:
        extracted.rename(directory)
    finally:
        shutil.rmtree(leftover, ignore_errors=True)


def _folder_remove(directory: Path) -> None:
    """Remove a version's folder: renamed away in one step first, so that no reader finds it half deleted."""
    leftover = _incoming_folder()
    try:
        directory.rename(leftover)
    except FileNotFoundError:
        return
    shutil.rmtree(leftover, ignore_errors=True)


def _validation_record(version: ModelVersion, status: str, *, reason: str = "") -> str:
    version.status, version.status_reason, version.validated_at = status, reason, timezone.now()
    with transaction.atomic():
        version.save()
        event_record(
            action="registry.version.validated",
            obj=version,
            changes={"status": status, "reason": reason, "parameters": version.parameter_count},
            outcome="success" if status == VersionStatus.READY else "failure",
        )
        transaction.on_commit(partial(_version_publish, version))
    return f"{version}: {status}{f' ({reason})' if reason else ''}"


def _version_publish(version: ModelVersion) -> None:
    """The version's new status on the live streams of its uploader, its model's owner, and those who see
    everyone's jobs (README: "Live job updates")."""
    message = {
        "type": "version.update",
        "kind": "model-version",
        "id": version.pk,
        "model": version.model.name,
        "version": version.version,
        "status": version.status,
        "status_reason": version.status_reason,
        "updated_at": version.validated_at.isoformat(),
    }
    owners = (version.created_by_id, version.model.owner_id)
    stream_publish([(owners, message)], audience=EVERYONE, what="model version")


def version_revalidate(*, version: ModelVersion, actor) -> ModelVersion:
    """Put the version back to validating and queue its validation (QueueUnavailable if the broker refuses it;
    the version then keeps the status it had)."""
    _require_change(actor, version.model)
    with transaction.atomic():
        earlier = (version.status, version.status_reason)
        ModelVersion.objects.filter(pk=version.pk).update(status=VersionStatus.VALIDATING, status_reason="")
        version.status, version.status_reason = VersionStatus.VALIDATING, ""
        _validation_queue(version, earlier=earlier)
    return version


def version_archive(*, version: ModelVersion, actor) -> ModelVersion:
    """Retire a version: no alias may point at it and it can no longer be used."""
    _require_change(actor, version.model)
    if version.archived_at:
        raise RegistryError(f"{version} is already archived.", status=409)
    with transaction.atomic():
        if names := list(version.aliases.values_list("name", flat=True)):
            raise RegistryError(
                f"{version} is still the target of the alias(es) {', '.join(names)}; move them first.", status=409
            )
        version.archived_at = timezone.now()
        version.save(update_fields=["archived_at"])
        event_record(action="registry.version.archived", actor=actor, obj=version)
    return version


# --- Aliases


def alias_move(*, model: RegisteredModel, name: str, version: ModelVersion, actor) -> ModelAlias:
    """Point alias ``name`` of ``model`` at ``version`` (creating it); ``production`` needs the admin role."""
    _require_change(actor, model)
    if name in PROTECTED_ALIASES and not has_role(actor, Role.ADMIN):
        raise RegistryError(f"Moving the {name} alias needs the admin role.", status=403)
    try:
        name_validator(name)
    except Exception as exc:
        raise RegistryError(f"Alias {name!r}: {exc.messages[0]}", field="alias") from None
    if version.model_id != model.pk:
        raise RegistryError(f"Version {version.pk} belongs to another model.", field="version")
    if version.status != VersionStatus.READY or version.archived_at:
        state = "archived" if version.archived_at else version.status
        raise RegistryError(f"{version} is {state}; only a ready version can take an alias.", status=409)
    with transaction.atomic():
        alias = ModelAlias.objects.select_for_update().filter(model=model, name=name).first()
        previous = alias.version.version if alias else None
        if alias is None:
            alias = ModelAlias(model=model, name=name)
        alias.version, alias.updated_by = version, actor
        alias.save()
        event_record(
            action="registry.alias.moved",
            actor=actor,
            obj=alias,
            changes={"alias": name, "version": [previous, version.version]},
        )
    return alias


# --- Prediction


def version_resolve(*, model: RegisteredModel, alias: str | None = None, number: int | None = None) -> ModelVersion:
    """The version an alias points at, or version ``number``; ready and not archived."""
    if alias and number is not None:
        raise RegistryError("Give an alias or a version number, not both.", field="alias")
    if number is not None:
        version = model.versions.filter(version=number).first()
        if version is None:
            raise RegistryError(f"{model.name} has no version {number}.", status=404, field="version")
    else:
        alias = alias or "production"
        target = model.aliases.select_related("version").filter(name=alias).first()
        if target is None:
            raise RegistryError(f"{model.name} has no alias {alias!r}.", status=404, field="alias")
        version = target.version
    if version.status != VersionStatus.READY or version.archived_at:
        state = "archived" if version.archived_at else version.status
        raise RegistryError(f"{version} is {state} and cannot be used.", status=409, field="version")
    version.model = model
    return version


def _check_inputs(inputs) -> list[str]:
    limit = settings.REGISTRY_SYNC_MAX_INPUTS
    if not isinstance(inputs, list) or not inputs:
        raise RegistryError("The inputs must be a non-empty list of texts.", field="inputs")
    if len(inputs) > limit:
        raise RegistryError(
            f"{len(inputs):,} inputs; a synchronous prediction takes at most {limit:,}. Use an inference job for more.",
            status=413,
            field="inputs",
        )
    for index, text in enumerate(inputs):
        if not isinstance(text, str) or not text.strip():
            raise RegistryError(f"Input {index} must be a non-empty text.", field="inputs")
        if len(text) > settings.REGISTRY_MAX_INPUT_CHARS:
            raise RegistryError(
                f"Input {index} has {len(text):,} characters; the limit is {settings.REGISTRY_MAX_INPUT_CHARS:,}.",
                field="inputs",
            )
    return inputs


def predict(*, model: RegisteredModel, inputs, actor, alias: str | None = None, number: int | None = None) -> dict:
    """Run the pipeline of the resolved version on up to REGISTRY_SYNC_MAX_INPUTS inputs; one output per input.

    Predicting is a use of the model: operators and administrators only.
    """
    if not has_role(actor, *WRITE_ROLES):
        raise RegistryError("Only operators and administrators may run predictions.", status=403)
    texts = _check_inputs(inputs)
    version = version_resolve(model=model, alias=alias, number=number)
    started = time.perf_counter()
    try:
        loaded = pipelines.get(version.pk, version_directory_ready(version), model.task)
        outputs = loaded(texts)
    except ModelLoadError as exc:
        raise RegistryError(f"{version} cannot be loaded: {exc}", status=409) from None
    drift_observe(version=version, texts=texts, outputs=outputs)
    REGISTRY_PREDICTION_LATENCY.observe(time.perf_counter() - started)
    REGISTRY_PREDICTIONS.labels(model=model.name).inc(len(texts))
    event_record(
        action="registry.prediction",
        actor=actor,
        obj=version,
        changes={"inputs": len(texts), "alias": alias or "", "version": version.version},
    )
    return {"model": model.name, "version": version.version, "alias": alias, "outputs": plain_outputs(outputs)}


def plain_outputs(value):
    """Pipeline outputs as JSON-friendly values (numpy and torch numbers become floats, arrays lists)."""
    if isinstance(value, dict):
        return {key: plain_outputs(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_outputs(item) for item in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
