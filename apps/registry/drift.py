"""Drift watch: what a version's predictions look like lately, against what they looked like in its evaluation.

Two features describe a stream of predictions: the predicted ``label`` and the ``input_length`` (characters, in
bins that double: 0-15, 16-31, … 4096+). An evaluation job stores their distributions over its rows as the
version's reference; every synchronous prediction adds its texts to hourly counts (``DriftCount``: one upsert per
call, a few rows per hour whatever the traffic). The population stability index (PSI) of each feature compares the
last REGISTRY_DRIFT_WINDOW_HOURS hours with the reference:

    PSI = sum over bins of (window share - reference share) * ln(window share / reference share)

with shares of empty bins taken as 0.0001 so that a bin seen on one side only counts, heavily, rather than
dividing by zero. Under REGISTRY_DRIFT_PSI_WARN (0.1) the stream looks like the evaluation, from it to
REGISTRY_DRIFT_PSI_ALERT (0.25) it moved somewhat, above it drifted. A periodic task (``drift_check``) publishes the
figures as the gauge ``registry_drift_psi`` and announces ``model.drift`` to the model's owner, once a day per
version while it lasts.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.core.events import notify

from .metrics import REGISTRY_DRIFT_PSI
from .models import DriftCount, ModelVersion

FEATURES = ("label", "input_length")
FEATURE_NAMES = {"label": "Predicted label", "input_length": "Input length (characters)"}
# Upper ends (exclusive) of the length bins; the last bin takes everything longer.
LENGTH_EDGES = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
LENGTH_BINS = (
    *(f"{lower}-{upper - 1}" for lower, upper in zip((0, *LENGTH_EDGES), LENGTH_EDGES, strict=False)),
    f"{LENGTH_EDGES[-1]}+",
)
EMPTY_SHARE = 0.0001
MAX_VALUE_CHARS = 200  # DriftCount.value
DRIFT_ACTION = "notification.model.drift"
# While a version drifts, its owner is reminded once a day, not at every check.
REMINDER_INTERVAL = timedelta(days=1)


class Status:
    NO_REFERENCE = "no_reference"
    TOO_FEW = "too_few_predictions"
    OK = "ok"
    WARN = "warn"
    DRIFT = "drift"


STATUS_TEXT = {
    Status.NO_REFERENCE: "No reference",
    Status.TOO_FEW: "Too few predictions",
    Status.OK: "No drift",
    Status.WARN: "Some drift",
    Status.DRIFT: "Drift",
}


def length_bin(text: str) -> str:
    length = len(text)
    for index, upper in enumerate(LENGTH_EDGES):
        if length < upper:
            return LENGTH_BINS[index]
    return LENGTH_BINS[-1]


def drift_bins(texts: Iterable[str], outputs: Iterable) -> Counter[tuple[str, str]]:
    """(feature, bin) counts of predictions: every text's length, and the label of outputs that have one."""
    counts: Counter[tuple[str, str]] = Counter()
    for text, output in zip(texts, outputs, strict=True):
        counts["input_length", length_bin(text)] += 1
        if isinstance(output, Mapping) and isinstance(output.get("label"), str):
            counts["label", output["label"][:MAX_VALUE_CHARS]] += 1
    return counts


def drift_reference(counts: Counter[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """Bin counts as stored with an evaluation: ``{"label": {"positive": 812, …}, "input_length": {…}}``."""
    reference: dict[str, dict[str, int]] = {feature: {} for feature in FEATURES}
    for (feature, value), count in sorted(counts.items()):
        reference[feature][value] = count
    return reference


# --- Counting predictions


def _upsert_sql() -> str:
    table = connection.ops.quote_name(DriftCount._meta.db_table)
    # PostgreSQL and SQLite share this upsert; adding in place keeps concurrent callers from losing counts.
    # Only the table's name is formatted in; every value is a parameter.
    insert = f"INSERT INTO {table} (version_id, hour, feature, value, predictions) VALUES {{rows}} "  # noqa: S608
    return (
        f"{insert}ON CONFLICT (version_id, hour, feature, value) "
        f"DO UPDATE SET predictions = {table}.predictions + EXCLUDED.predictions"
    )


def drift_observe(*, version: ModelVersion, texts: list[str], outputs: list, now: datetime | None = None) -> None:
    """Add the texts of one prediction call, and their outputs, to the version's counts of this hour."""
    if not settings.REGISTRY_DRIFT_ENABLED:
        return
    counts = drift_bins(texts, outputs)
    hour = _hour(now or timezone.now())
    # One order for every caller: two calls on the same bins lock their rows in the same order, never crosswise.
    rows = sorted(counts.items())
    values = []
    adapted_hour = connection.ops.adapt_datetimefield_value(hour)
    for (feature, value), count in rows:
        values += [version.pk, adapted_hour, feature, value, count]
    sql = _upsert_sql().format(rows=", ".join(["(%s, %s, %s, %s, %s)"] * len(rows)))
    with connection.cursor() as cursor:
        cursor.execute(sql, values)


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _window_start(now: datetime) -> datetime:
    return _hour(now) - timedelta(hours=settings.REGISTRY_DRIFT_WINDOW_HOURS - 1)


# --- Comparing


def psi(reference: Mapping[str, int], window: Mapping[str, int]) -> float:
    """The population stability index of ``window`` against ``reference`` (bin counts)."""
    reference_total, window_total = sum(reference.values()), sum(window.values())
    if not reference_total or not window_total:
        return 0.0
    total = 0.0
    for value in set(reference) | set(window):
        expected = max(reference.get(value, 0) / reference_total, EMPTY_SHARE)
        actual = max(window.get(value, 0) / window_total, EMPTY_SHARE)
        total += (actual - expected) * math.log(actual / expected)
    return total


def _level(value: float) -> str:
    if value >= settings.REGISTRY_DRIFT_PSI_ALERT:
        return Status.DRIFT
    return Status.WARN if value >= settings.REGISTRY_DRIFT_PSI_WARN else Status.OK


@dataclass
class FeatureDrift:
    feature: str
    psi: float | None
    status: str
    # (bin, reference share, window share), in the bins' own order (lengths ascending, labels by reference count).
    bins: list[tuple[str, float, float]]

    @property
    def name(self) -> str:
        return FEATURE_NAMES[self.feature]

    def as_dict(self) -> dict:
        return {
            "psi": None if self.psi is None else round(self.psi, 4),
            "status": self.status,
            "bins": [
                {"bin": value, "reference": round(expected, 4), "window": round(actual, 4)}
                for value, expected, actual in self.bins
            ],
        }


@dataclass
class DriftReport:
    """A version's drift: its status (the worst feature's), the window's size and each feature's PSI and bins."""

    status: str
    predictions: int
    window_hours: int
    reference_job: int | None
    features: list[FeatureDrift] = field(default_factory=list)

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status]

    @property
    def worst(self) -> FeatureDrift | None:
        scored = [feature for feature in self.features if feature.psi is not None]
        return max(scored, key=lambda feature: feature.psi) if scored else None

    def as_dict(self) -> dict:
        return {
            "status": self.status,
            "predictions": self.predictions,
            "window_hours": self.window_hours,
            "min_predictions": settings.REGISTRY_DRIFT_MIN_PREDICTIONS,
            "thresholds": {"warn": settings.REGISTRY_DRIFT_PSI_WARN, "drift": settings.REGISTRY_DRIFT_PSI_ALERT},
            "reference_job": self.reference_job,
            "features": {feature.feature: feature.as_dict() for feature in self.features},
        }


def _windows(version_ids: list[int], now: datetime) -> dict[int, dict[str, dict[str, int]]]:
    """The window's bin counts of each version: {version id: {feature: {bin: count}}}."""
    rows = (
        DriftCount.objects.filter(version_id__in=version_ids, hour__gte=_window_start(now))
        .values_list("version_id", "feature", "value")
        .annotate(count=Sum("predictions"))
    )
    windows: dict[int, dict[str, dict[str, int]]] = {}
    for version_id, feature, value, count in rows:
        windows.setdefault(version_id, {}).setdefault(feature, {})[value] = count
    return windows


def _report(version: ModelVersion, window: dict[str, dict[str, int]]) -> DriftReport:
    evaluation = version.evaluation
    reference = evaluation.get("reference") if isinstance(evaluation.get("reference"), dict) else {}
    predictions = sum(window.get("input_length", {}).values())
    report = DriftReport(
        status=Status.OK,
        predictions=predictions,
        window_hours=settings.REGISTRY_DRIFT_WINDOW_HOURS,
        reference_job=evaluation.get("job") if reference else None,
    )
    enough = predictions >= settings.REGISTRY_DRIFT_MIN_PREDICTIONS
    for feature in FEATURES:
        expected, actual = reference.get(feature) or {}, window.get(feature, {})
        if not expected and not actual:
            continue
        value = psi(expected, actual) if expected and actual and enough else None
        report.features.append(
            FeatureDrift(
                feature=feature,
                psi=value,
                status=_level(value) if value is not None else Status.TOO_FEW,
                bins=_bins(feature, expected, actual),
            )
        )
    if not reference:
        report.status = Status.NO_REFERENCE
    elif not enough:
        report.status = Status.TOO_FEW
    else:
        worst = report.worst
        report.status = worst.status if worst else Status.TOO_FEW
    return report


def _bins(feature: str, expected: Mapping[str, int], actual: Mapping[str, int]) -> list[tuple[str, float, float]]:
    expected_total, actual_total = sum(expected.values()) or 1, sum(actual.values()) or 1
    if feature == "input_length":
        order = [value for value in LENGTH_BINS if value in expected or value in actual]
    else:
        order = sorted(set(expected) | set(actual), key=lambda value: (-expected.get(value, 0), value))
    return [(value, expected.get(value, 0) / expected_total, actual.get(value, 0) / actual_total) for value in order]


def drift_reports(versions: Iterable[ModelVersion], *, now: datetime | None = None) -> dict[int, DriftReport]:
    """Each version's drift report, by version id (one query for all of them)."""
    versions = list(versions)
    windows = _windows([version.pk for version in versions], now or timezone.now())
    return {version.pk: _report(version, windows.get(version.pk, {})) for version in versions}


def drift_report(version: ModelVersion, *, now: datetime | None = None) -> DriftReport:
    return drift_reports([version], now=now)[version.pk]


# --- The periodic check


def drift_check(*, now: datetime | None = None) -> str:
    """Compute the PSI of every version predicted within the window (periodic task): set the gauge
    ``registry_drift_psi``, announce ``model.drift`` for each drifting version (once a day per version) and drop
    counts older than the window. Returns what was found."""
    now = now or timezone.now()
    DriftCount.objects.filter(hour__lt=_window_start(now)).delete()
    watched = DriftCount.objects.values("version_id").distinct()
    versions = list(ModelVersion.objects.filter(pk__in=watched).select_related("model", "model__owner").order_by("pk"))
    reports = drift_reports(versions, now=now)
    drifting = []
    for version in versions:
        report = reports[version.pk]
        for feature in report.features:
            if feature.psi is not None:
                REGISTRY_DRIFT_PSI.labels(
                    model=version.model.name, version=str(version.version), feature=feature.feature
                ).set(feature.psi)
        if report.status == Status.DRIFT:
            drifting.append(str(version))
            _announce(version, report, now)
    checked = f"{len(versions)} version{'s' if len(versions) != 1 else ''}"
    return f"Checked {checked}; drifting: {', '.join(drifting)}." if drifting else f"Checked {checked}; no drift."


def _announce(version: ModelVersion, report: DriftReport, now: datetime) -> None:
    recently = AuditEvent.objects.filter(
        action=DRIFT_ACTION,
        object_type=ModelVersion._meta.label_lower,
        object_id=str(version.pk),
        timestamp__gte=now - REMINDER_INTERVAL,
    )
    if recently.exists():
        return
    worst = report.worst
    threshold = settings.REGISTRY_DRIFT_PSI_ALERT
    summary = (
        f"{version} drifts from its evaluation: PSI {worst.psi:.2f} on {worst.feature} (threshold {threshold}) "
        f"over {report.predictions:,} predictions in the last {report.window_hours} h"
    )
    with transaction.atomic():
        notify(
            "model.drift",
            data={
                "model": version.model.name,
                "version": version.version,
                "aliases": sorted(version.aliases.values_list("name", flat=True)),
                "psi": {
                    feature.feature: round(feature.psi, 4) for feature in report.features if feature.psi is not None
                },
                "threshold": threshold,
                "predictions": report.predictions,
                "window_hours": report.window_hours,
                "path": reverse("registry_page:model", args=[version.model.name]) + "#drift",
            },
            user=version.model.owner,
            obj=version,
            summary=summary,
        )
