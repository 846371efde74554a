"""Loading model versions with transformers, strictly from local files, and the per-process pipeline cache."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .choices import ModelTask
from .metrics import REGISTRY_LOADED_PIPELINES

# The architecture name suffixes (config.json "architectures") that can serve each task.
TASK_ARCHITECTURES: dict[str, tuple[str, ...]] = {
    ModelTask.TEXT_CLASSIFICATION: ("ForSequenceClassification",),
    ModelTask.TOKEN_CLASSIFICATION: ("ForTokenClassification",),
    ModelTask.FILL_MASK: ("ForMaskedLM",),
    ModelTask.FEATURE_EXTRACTION: ("Model", "ForMaskedLM", "ForSequenceClassification", "ForTokenClassification"),
    ModelTask.TEXT_GENERATION: ("ForCausalLM", "LMHeadModel"),
    ModelTask.SUMMARIZATION: ("ForConditionalGeneration",),
}


class ModelLoadError(ValueError):
    """The version cannot serve its task; the message says why."""


@dataclass(frozen=True)
class LoadedModel:
    pipeline: object
    architectures: list[str]
    model_type: str
    parameter_count: int
    labels: list[str]
    load_seconds: float


def task_fit_error(task: str, architectures: list[str]) -> str | None:
    """Why a model of these architectures cannot serve ``task`` (None when it can)."""
    suffixes = TASK_ARCHITECTURES[task]
    if any(name.endswith(suffixes) for name in architectures):
        return None
    found = ", ".join(architectures) or "none"
    return (
        f"config.json declares the architectures {found}, which do not fit the task {task} "
        f"(it needs an architecture ending in {' or '.join(suffixes)})."
    )


def model_load(directory: Path, task: str) -> LoadedModel:
    """Load config, tokenizer and model from ``directory`` only; raises ModelLoadError with a readable reason."""
    from transformers import AutoConfig, AutoTokenizer, pipeline

    started = time.perf_counter()
    try:
        config = AutoConfig.from_pretrained(directory, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"config.json cannot be read: {exc}") from None
    architectures = list(config.architectures or [])
    if reason := task_fit_error(task, architectures):
        raise ModelLoadError(reason)
    try:
        tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        # pipeline() passes unknown arguments on to the pipeline itself (fill-mask refuses
        # local_files_only); the model is read from the folder with HF_HUB_OFFLINE=1 (settings).
        # Classifiers cut long texts to the model's maximum length, in predictions as in batch jobs
        # (apps.registry.batching follows this pipeline's options), rather than failing on them.
        options = {"truncation": True} if task == ModelTask.TEXT_CLASSIFICATION else {}
        loaded = pipeline(task, model=str(directory), tokenizer=tokenizer, device="cpu", **options)
    except Exception as exc:  # transformers raises many kinds; each is the artifact's fault here
        raise ModelLoadError(f"transformers could not load the model: {type(exc).__name__}: {exc}") from None
    labels = [config.id2label[index] for index in sorted(config.id2label)] if config.id2label else []
    return LoadedModel(
        pipeline=loaded,
        architectures=architectures,
        model_type=config.model_type or "",
        parameter_count=sum(parameter.numel() for parameter in loaded.model.parameters()),
        labels=labels if task in (ModelTask.TEXT_CLASSIFICATION, ModelTask.TOKEN_CLASSIFICATION) else [],
        load_seconds=time.perf_counter() - started,
    )


def smoke_input(task: str, loaded_pipeline) -> str:
    """An input every model of the task accepts."""
    if task == ModelTask.FILL_MASK:
        return f"The portal runs {loaded_pipeline.tokenizer.mask_token} jobs."
    return "Opsdeck checks that this model answers."


class PipelineCache:
    """Loaded pipelines of this process by version id, least recently used dropped first."""

    def __init__(self):
        self._pipelines: OrderedDict[int, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, version_id: int, directory: Path, task: str):
        with self._lock:
            if version_id in self._pipelines:
                self._pipelines.move_to_end(version_id)
                return self._pipelines[version_id]
        # Loaded outside the lock: one slow load must not hold up predictions on other versions.
        loaded = model_load(directory, task).pipeline
        with self._lock:
            self._pipelines[version_id] = loaded
            self._pipelines.move_to_end(version_id)
            while len(self._pipelines) > settings.REGISTRY_CACHE_SIZE:
                self._pipelines.popitem(last=False)
            REGISTRY_LOADED_PIPELINES.set(len(self._pipelines))
            return loaded

    def clear(self) -> None:
        with self._lock:
            self._pipelines.clear()
            REGISTRY_LOADED_PIPELINES.set(0)


pipelines = PipelineCache()
