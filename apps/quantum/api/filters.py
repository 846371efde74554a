"""Filters of the quantum job list."""

import json

import django_filters
from django.db import connection
from django.db.models import QuerySet, TextField, Value
from django.db.models.functions import Cast, StrIndex

from apps.core.datetimes import StorableIsoDateTimeFilter
from apps.jobs.choices import JobStatus

from ..choices import SimulationMethod
from ..models import QuantumJob


def jobs_with_tag(jobs: QuerySet[QuantumJob], tag: str) -> QuerySet[QuantumJob]:
    """Jobs whose tag list holds ``tag`` exactly: JSON containment where the database has it (PostgreSQL)."""
    if connection.features.supports_json_field_contains:
        return jobs.filter(tags__contains=[tag])
    # SQLite (the embedded mode): the quoted tag inside the stored JSON text. Tags hold no quotes, so
    # this matches whole tags only; StrIndex (instr) is case-sensitive where LIKE is not.
    return jobs.alias(tag_at=StrIndex(Cast("tags", TextField()), Value(json.dumps(tag)))).filter(tag_at__gt=0)


class QuantumJobFilter(django_filters.FilterSet):
    # No join to de-duplicate: distinct would only make PostgreSQL sort the matches.
    status = django_filters.MultipleChoiceFilter(
        choices=JobStatus.choices, distinct=False, label="Jobs in this status; repeat the parameter for several."
    )
    method = django_filters.ChoiceFilter(choices=SimulationMethod.choices)
    tag = django_filters.CharFilter(method="filter_tag", label="Jobs carrying this tag (exact match).")
    # Applied within the jobs the user may see: for users who see only their own jobs,
    # any other username gives an empty list rather than an error that would confirm the account exists.
    owner = django_filters.CharFilter(
        field_name="owner__username",
        label="Jobs of this user (username). Administrators and viewers see everyone's jobs; others only their own.",
    )
    created_after = StorableIsoDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Jobs created at or after this ISO 8601 time"
    )
    created_before = StorableIsoDateTimeFilter(
        field_name="created_at", lookup_expr="lt", label="Jobs created before this ISO 8601 time"
    )

    class Meta:
        model = QuantumJob
        fields = ["status", "method", "tag", "owner", "created_after", "created_before"]

    def filter_tag(self, jobs: QuerySet[QuantumJob], name: str, value: str) -> QuerySet[QuantumJob]:
        return jobs_with_tag(jobs, value)
