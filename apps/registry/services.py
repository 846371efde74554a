"""Model registry: register models, upload and validate versions, move aliases, predict."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
import time
import uuid
from functools import partial
from pathlib import Path

import markdown
import nh3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone
from frontmatter.default_handlers import YAMLHandler

from apps.audit.services import event_record
from apps.core.choices import Role
from apps.core.errors import ApplicationError
from apps.core.permissions import WRITE_ROLES, has_role
from apps.core.queueing import QueueUnavailable, enqueue_on_commit
from apps.core.request_context import current_request_id
from apps.core.storage import StorageUnavailable
from apps.jobs.kinds import EVERYONE
from apps.jobs.publishing import stream_publish

from . import signatures
from .artifacts import ArtifactError, artifact_extract
from .choices import AliasAction, ModelTask, VersionStatus
from .drift import drift_observe
from .loading import ModelLoadError, model_load, pipelines, smoke_input
from .metrics import (
    REGISTRY_ALIAS_LATENCY,
    REGISTRY_ALIAS_PREDICTIONS,
    REGISTRY_PREDICTION_LATENCY,
    REGISTRY_PREDICTIONS,
)
from .models import AliasChange, ModelAlias, ModelVersion, RegisteredModel, name_validator

PROTECTED_ALIASES = ("production",)
MAX_TAGS = 10
# Version tags follow the quantum job tags' rule.
MAX_TAG_LENGTH = 50
_TAG = re.compile(r"^[\w.:-]+$")
MAX_CALLER_KEY = 200
MAX_DATASET_REFERENCE = 300

logger = logging.getLogger(__name__)


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
        names = {
            *version.aliases.values_list("name", flat=True),
            *version.canary_aliases.values_list("name", flat=True),
        }
        if names := sorted(names):
            raise RegistryError(
                f"{version} is still the target of the alias(es) {', '.join(names)}; move them first.", status=409
            )
        version.archived_at = timezone.now()
        version.save(update_fields=["archived_at"])
        event_record(action="registry.version.archived", actor=actor, obj=version)
    return version


# --- Tags, lineage and signature

VERSION_EDITABLE = ("tags", "training_dataset", "source_run_url", "parent_version", "input_schema", "output_schema")


def version_update(*, version: ModelVersion, actor, changes: dict) -> ModelVersion:
    """Set the version's tags, lineage (training dataset, source run URL, parent version) and signature (input and
    output JSON Schemas; null removes one): the model's owner or an admin. Only the keys given change."""
    _require_change(actor, version.model)
    if unknown := sorted(set(changes) - set(VERSION_EDITABLE)):
        raise RegistryError(
            f"Unknown field(s) {', '.join(unknown)}; a version's editable fields are {', '.join(VERSION_EDITABLE)}.",
            field=unknown[0],
        )
    values = {}
    if "tags" in changes:
        values["tags"] = _tags_checked(changes["tags"])
    if "training_dataset" in changes:
        values["training_dataset"] = _dataset_checked(changes["training_dataset"])
    if "source_run_url" in changes:
        values["source_run_url"] = _run_url_checked(changes["source_run_url"])
    if "parent_version" in changes:
        values["parent"] = _parent_checked(version, changes["parent_version"])
    for field in ("input_schema", "output_schema"):
        if field in changes:
            try:
                values[field] = signatures.schema_check(changes[field])
            except signatures.SchemaRefused as exc:
                message = str(exc)
                raise RegistryError(message[:1].upper() + message[1:], field=field) from None
    changed = {}
    with transaction.atomic():
        for field, value in values.items():
            before = getattr(version, field)
            if before != value:
                changed[field] = [_audited(before), _audited(value)]
                setattr(version, field, value)
        if changed:
            version.save(update_fields=list(values))
            event_record(action="registry.version.updated", actor=actor, obj=version, changes=changed)
    return version


def _audited(value):
    """A value as the audit trail keeps it: a version by its number, a schema by its size."""
    if isinstance(value, ModelVersion):
        return value.version
    if isinstance(value, dict):
        return f"schema of {len(str(value)):,} characters"
    return value


def _tags_checked(tags) -> list[str]:
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise RegistryError("tags must be a list of texts.", field="tags")
    if len(tags) > MAX_TAGS:
        raise RegistryError(f"At most {MAX_TAGS} tags; got {len(tags)}.", field="tags")
    for tag in tags:
        if not (0 < len(tag) <= MAX_TAG_LENGTH and _TAG.match(tag)):
            raise RegistryError(
                f"Tag {tag!r} is not allowed: use 1 to {MAX_TAG_LENGTH} letters, digits, '.', ':', '_' or '-'.",
                field="tags",
            )
    if len(set(tags)) != len(tags):
        raise RegistryError("Each tag may appear once.", field="tags")
    return tags


def _dataset_checked(reference) -> str:
    if reference is None:
        return ""
    if not isinstance(reference, str) or len(reference) > MAX_DATASET_REFERENCE or not reference.isprintable():
        raise RegistryError(
            f"training_dataset must be a printable text of at most {MAX_DATASET_REFERENCE} characters.",
            field="training_dataset",
        )
    return reference.strip()


def _run_url_checked(url) -> str:
    if url in (None, ""):
        return ""
    field = ModelVersion._meta.get_field("source_run_url")
    try:
        if not isinstance(url, str) or len(url) > field.max_length:
            raise ValidationError(f"at most {field.max_length} characters")
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise RegistryError(
            f"source_run_url {str(url)[:80]!r} is not an http(s) URL of at most {field.max_length} characters.",
            field="source_run_url",
        ) from exc
    return url


def _parent_checked(version: ModelVersion, number) -> ModelVersion | None:
    if number is None:
        return None
    if not isinstance(number, int) or isinstance(number, bool):
        raise RegistryError("parent_version must be a version number or null.", field="parent_version")
    if number >= version.version:
        raise RegistryError(
            f"The parent of v{version.version} must be an earlier version of {version.model.name}; got v{number}.",
            field="parent_version",
        )
    parent = version.model.versions.filter(version=number).first()
    if parent is None:
        raise RegistryError(f"{version.model.name} has no version {number}.", field="parent_version")
    return parent


# --- Aliases and rollouts

BUCKETS = 10_000  # callers are spread over this many buckets: a weight of 1 % is 100 of them


def _alias_door(actor, model: RegisteredModel, name: str) -> None:
    """Who may change alias ``name``: the model's owner or an admin; production only an admin."""
    _require_change(actor, model)
    if name in PROTECTED_ALIASES and not has_role(actor, Role.ADMIN):
        raise RegistryError(f"Moving the {name} alias needs the admin role.", status=403)


def _usable_or_409(version: ModelVersion) -> None:
    if version.status != VersionStatus.READY or version.archived_at:
        state = "archived" if version.archived_at else version.status
        raise RegistryError(f"{version} is {state}; only a ready version can take an alias.", status=409)


def _alias_split(alias: ModelAlias | None) -> list[dict]:
    return alias.split if alias is not None else []


def _alias_write(
    *,
    model: RegisteredModel,
    name: str,
    actor,
    action: str,
    stable: ModelVersion,
    canary: ModelVersion | None = None,
    canary_weight: int = 0,
    locked: ModelAlias | None = None,
) -> ModelAlias:
    """Save the alias's new targets, its history row and the audit event; call inside a transaction with the alias
    row ``locked`` (or None when it does not exist yet)."""
    alias = locked
    before = _alias_split(alias)
    if alias is None:
        alias = ModelAlias(model=model, name=name)
    elif alias.version_id != stable.pk:
        # A rollback without a canary returns to the stable version this one replaced.
        alias.previous_version = alias.version
    alias.version, alias.canary, alias.canary_weight, alias.updated_by = stable, canary, canary_weight, actor
    alias.save()
    after = alias.split
    AliasChange.objects.create(model=model, alias=name, action=action, before=before, after=after, actor=actor)
    audit_action = {
        AliasAction.SET: "registry.alias.moved",
        AliasAction.SPLIT: "registry.alias.split",
        AliasAction.PROMOTE: "registry.alias.promoted",
        AliasAction.ROLLBACK: "registry.alias.rolled_back",
    }[action]
    previous = before[0]["version"] if before else None
    changes = {"alias": name, "version": [previous, stable.version], "split": [before, after]}
    event_record(action=audit_action, actor=actor, obj=alias, changes=changes)
    return alias


def _alias_locked(model: RegisteredModel, name: str) -> ModelAlias | None:
    # The model row serializes changes of its aliases: two first writers of one alias name would otherwise both
    # find no row and one of them fail on the unique constraint.
    RegisteredModel.objects.select_for_update().filter(pk=model.pk).first()
    return (
        ModelAlias.objects.select_for_update(of=("self",))
        .select_related("version", "canary", "previous_version")
        .filter(model=model, name=name)
        .first()
    )


def _alias_existing(model: RegisteredModel, name: str) -> ModelAlias:
    alias = _alias_locked(model, name)
    if alias is None:
        raise RegistryError(f"{model.name} has no alias {name!r}.", status=404, field="alias")
    return alias


def _name_checked(name: str) -> None:
    try:
        name_validator(name)
    except Exception as exc:
        raise RegistryError(f"Alias {name!r}: {exc.messages[0]}", field="alias") from None


def alias_move(*, model: RegisteredModel, name: str, version: ModelVersion, actor) -> ModelAlias:
    """Point alias ``name`` of ``model`` at ``version`` alone (creating it, ending any rollout); ``production``
    needs the admin role."""
    _alias_door(actor, model, name)
    _name_checked(name)
    if version.model_id != model.pk:
        raise RegistryError(f"Version {version.pk} belongs to another model.", field="version")
    _usable_or_409(version)
    with transaction.atomic():
        return _alias_write(
            model=model,
            name=name,
            actor=actor,
            action=AliasAction.SET,
            stable=version,
            locked=_alias_locked(model, name),
        )


def alias_route(*, model: RegisteredModel, name: str, targets, actor) -> ModelAlias:
    """Point alias ``name`` at one version or split it between two: ``targets`` is ``[{"version": n, "weight": w},
    …]`` with 1 or 2 entries, weights 1 to 99 summing to 100 (a single entry takes 100, its weight may be left out).

    Of two versions the stable one is the version the alias already serves if it is one of them, else the heavier
    one (the lower number at 50/50); the other is the canary. Callers are assigned by ``alias_assign``.
    """
    _alias_door(actor, model, name)
    _name_checked(name)
    entries = _targets_checked(targets)
    versions = {
        version.version: version
        for version in model.versions.filter(version__in=[number for number, _ in entries]).select_related("model")
    }
    for number, _weight in entries:
        if number not in versions:
            raise RegistryError(f"{model.name} has no version {number}.", field="versions")
        _usable_or_409(versions[number])
    with transaction.atomic():
        alias = _alias_locked(model, name)
        if len(entries) == 1:
            return _alias_write(
                model=model,
                name=name,
                actor=actor,
                action=AliasAction.SET,
                stable=versions[entries[0][0]],
                locked=alias,
            )
        current = alias.version.version if alias is not None else None
        ordered = sorted(entries, key=lambda entry: (entry[0] != current, -entry[1], entry[0]))
        (stable, _), (canary, weight) = ordered
        return _alias_write(
            model=model,
            name=name,
            actor=actor,
            action=AliasAction.SPLIT,
            stable=versions[stable],
            canary=versions[canary],
            canary_weight=weight,
            locked=alias,
        )


def _targets_checked(targets) -> list[tuple[int, int]]:
    """``targets`` as (version number, weight) pairs, or a RegistryError naming what is wrong."""
    if not isinstance(targets, list) or not 1 <= len(targets) <= 2:
        raise RegistryError("versions must list 1 or 2 versions with their weights.", field="versions")
    entries = []
    for index, target in enumerate(targets):
        if not isinstance(target, dict) or set(target) - {"version", "weight"} or "version" not in target:
            raise RegistryError(
                f'versions[{index}] must be {{"version": <number>, "weight": <percent>}}.', field="versions"
            )
        number, weight = target["version"], target.get("weight", 100 if len(targets) == 1 else None)
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise RegistryError(f"versions[{index}].version must be a version number.", field="versions")
        if not isinstance(weight, int) or isinstance(weight, bool):
            raise RegistryError(f"versions[{index}].weight must be a whole percent.", field="versions")
        entries.append((number, weight))
    if len(entries) == 1:
        if entries[0][1] != 100:
            raise RegistryError(
                f"A single version takes all the traffic: its weight must be 100, not {entries[0][1]}.",
                field="versions",
            )
        return entries
    if entries[0][0] == entries[1][0]:
        raise RegistryError(
            f"Version {entries[0][0]} is listed twice; split between two different versions.", field="versions"
        )
    if any(not 1 <= weight <= 99 for _, weight in entries) or sum(weight for _, weight in entries) != 100:
        weights = " + ".join(str(weight) for _, weight in entries)
        raise RegistryError(
            f"The weights of a split must each be 1 to 99 and sum to 100; got {weights}.", field="versions"
        )
    return entries


def alias_promote(*, model: RegisteredModel, name: str, actor, number: int | None = None) -> ModelAlias:
    """End a rollout: the canary (or the split's version ``number``) takes all the traffic."""
    _alias_door(actor, model, name)
    with transaction.atomic():
        alias = _alias_existing(model, name)
        if alias.canary_id is None:
            raise RegistryError(
                f"{name} serves v{alias.version.version} alone; there is no canary to promote.", status=409
            )
        in_split = {alias.version.version: alias.version, alias.canary.version: alias.canary}
        if number is None:
            number = alias.canary.version
        if number not in in_split:
            raise RegistryError(
                f"v{number} is not part of {name}'s split ({alias.split_text}); promote one of "
                f"{', '.join(f'v{n}' for n in in_split)}.",
                field="version",
            )
        _usable_or_409(in_split[number])
        return _alias_write(
            model=model, name=name, actor=actor, action=AliasAction.PROMOTE, stable=in_split[number], locked=alias
        )


def alias_rollback(*, model: RegisteredModel, name: str, actor) -> ModelAlias:
    """Back to safety in one step: during a rollout the stable version takes all the traffic again; otherwise the
    alias returns to the version it served before its last move or promotion."""
    _alias_door(actor, model, name)
    with transaction.atomic():
        alias = _alias_existing(model, name)
        if alias.canary_id is not None:
            target = alias.version
        elif alias.previous_version is not None:
            target = alias.previous_version
        else:
            raise RegistryError(
                f"{name} has served only v{alias.version.version}; there is no earlier version to roll back to.",
                status=409,
            )
        _usable_or_409(target)
        return _alias_write(
            model=model, name=name, actor=actor, action=AliasAction.ROLLBACK, stable=target, locked=alias
        )


def alias_delete(*, model: RegisteredModel, name: str, actor) -> None:
    """Remove alias ``name``; its history stays. Predictions naming it then get 404."""
    _alias_door(actor, model, name)
    with transaction.atomic():
        alias = _alias_existing(model, name)
        before = alias.split
        event_record(
            action="registry.alias.deleted", actor=actor, obj=alias, changes={"alias": name, "split": [before, []]}
        )
        AliasChange.objects.create(
            model=model, alias=name, action=AliasAction.DELETE, before=before, after=[], actor=actor
        )
        alias.delete()


def alias_assign(alias: ModelAlias, caller_key: str | None) -> ModelVersion:
    """The version of ``alias`` that answers ``caller_key``: sticky per caller, and exact in the large.

    SHA-256 of model, alias and key gives the caller a bucket 0..9,999; the canary takes the buckets below
    ``canary_weight`` times 100. A caller stays where it is while the weight holds, and a canary growing from 10 % to
    50 % keeps its first callers. Without a key (a batch job) the stable version answers.
    """
    if alias.canary_id is None or caller_key is None:
        return alias.version
    digest = hashlib.sha256(f"{alias.model.name}\x00{alias.name}\x00{caller_key}".encode()).digest()
    bucket = int.from_bytes(digest[:8], "big") % BUCKETS
    return alias.canary if bucket < alias.canary_weight * BUCKETS // 100 else alias.version


# --- Prediction


def version_resolve(
    *, model: RegisteredModel, alias: str | None = None, number: int | None = None, caller_key: str | None = None
) -> ModelVersion:
    """The version an alias gives ``caller_key`` (its stable version without one), or version ``number``; ready
    and not archived."""
    if alias and number is not None:
        raise RegistryError("Give an alias or a version number, not both.", field="alias")
    if number is not None:
        version = model.versions.filter(version=number).first()
        if version is None:
            raise RegistryError(f"{model.name} has no version {number}.", status=404, field="version")
    else:
        alias = alias or "production"
        target = model.aliases.select_related("version", "canary").filter(name=alias).first()
        if target is None:
            raise RegistryError(f"{model.name} has no alias {alias!r}.", status=404, field="alias")
        target.model = model
        version = alias_assign(target, caller_key)
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


def predict(
    *,
    model: RegisteredModel,
    inputs,
    actor,
    alias: str | None = None,
    number: int | None = None,
    caller_key: str | None = None,
) -> dict:
    """Run the pipeline of the resolved version on up to REGISTRY_SYNC_MAX_INPUTS inputs; one output per input.

    Through a split alias the version is chosen by ``caller_key`` (else the request id, see ``alias_assign``).
    Inputs must match the version's input schema (400 naming the input); outputs that break its output schema are
    withheld: 409 naming the output, a warning in the log and ``outcome="invalid_output"`` in the metrics.
    Predicting is a use of the model: operators and administrators only.
    """
    if not has_role(actor, *WRITE_ROLES):
        raise RegistryError("Only operators and administrators may run predictions.", status=403)
    texts = _check_inputs(inputs)
    key = _caller_key(caller_key)
    version = version_resolve(model=model, alias=alias, number=number, caller_key=key)
    labels = {
        "model": model.name,
        "alias": alias or ("" if number is not None else "production"),
        "version": str(version.version),
    }
    if mismatch := _signature_check(version, "input_schema", texts, labels):
        REGISTRY_ALIAS_PREDICTIONS.labels(**labels, outcome="invalid_input").inc()
        raise RegistryError(
            f"{mismatch.describe('Input')} (the input schema of {version}).", field="inputs", code="input_schema"
        )
    started = time.perf_counter()
    try:
        loaded = pipelines.get(version.pk, version_directory_ready(version), model.task)
        outputs = loaded(texts)
    except ModelLoadError as exc:
        REGISTRY_ALIAS_PREDICTIONS.labels(**labels, outcome="error").inc()
        raise RegistryError(f"{version} cannot be loaded: {exc}", status=409) from None
    except Exception:
        REGISTRY_ALIAS_PREDICTIONS.labels(**labels, outcome="error").inc()
        raise
    elapsed = time.perf_counter() - started
    drift_observe(version=version, texts=texts, outputs=outputs)
    REGISTRY_PREDICTION_LATENCY.observe(elapsed)
    REGISTRY_ALIAS_LATENCY.labels(**labels).observe(elapsed)
    REGISTRY_PREDICTIONS.labels(model=model.name).inc(len(texts))
    outputs = plain_outputs(outputs)
    if mismatch := _signature_check(version, "output_schema", outputs, labels):
        _output_refused(version, actor, labels, mismatch)
    REGISTRY_ALIAS_PREDICTIONS.labels(**labels, outcome="ok").inc()
    event_record(
        action="registry.prediction",
        actor=actor,
        obj=version,
        changes={"inputs": len(texts), "alias": alias or "", "version": version.version},
    )
    return {"model": model.name, "version": version.version, "alias": alias, "outputs": outputs}


def _signature_check(version: ModelVersion, field: str, items: list, labels: dict) -> signatures.Mismatch | None:
    try:
        return signatures.first_mismatch(getattr(version, field), items)
    except signatures.SchemaBroken as exc:
        REGISTRY_ALIAS_PREDICTIONS.labels(**labels, outcome="error").inc()
        raise RegistryError(f"The {field} of {version} cannot be used: {exc}. Fix or remove it.", status=409) from None


def _caller_key(caller_key) -> str:
    """Who is asking, for sticky assignment: the caller's key, else the request id, else a one-off key."""
    if caller_key is None:
        return current_request_id.get() or uuid.uuid4().hex
    if not isinstance(caller_key, str) or not 1 <= len(caller_key) <= MAX_CALLER_KEY:
        raise RegistryError(f"caller_key must be a text of 1 to {MAX_CALLER_KEY} characters.", field="caller_key")
    return caller_key


def _output_refused(version: ModelVersion, actor, labels: dict, mismatch: signatures.Mismatch) -> None:
    """The version answered outside its declared output schema: the caller gets no unchecked output but a 409
    saying so (the model's fault, not the request's), and operators find it counted, logged and audited."""
    REGISTRY_ALIAS_PREDICTIONS.labels(**labels, outcome="invalid_output").inc()
    problem = mismatch.describe("output")
    logger.warning("%s answered outside its output schema: %s", version, problem)
    event_record(
        action="registry.prediction",
        actor=actor,
        obj=version,
        changes={"alias": labels["alias"], "version": version.version, "output_schema": problem},
        outcome="failure",
    )
    raise RegistryError(
        f"{version} answered outside its output schema: {problem}. The outputs were withheld; "
        "fix the version or its output schema.",
        status=409,
        code="output_schema",
    )


def plain_outputs(value):
    """Pipeline outputs as JSON-friendly values (numpy and torch numbers become floats, arrays lists)."""
    if isinstance(value, dict):
        return {key: plain_outputs(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_outputs(item) for item in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    return value
