"""Filters of the audit trail, shared by the event list and the export."""

from datetime import datetime

import django_filters

from apps.core.datetimes import StorableIsoDateTimeFilter

from ..choices import Outcome
from ..models import AuditEvent


class AuditEventFilter(django_filters.FilterSet):
    action = django_filters.CharFilter(field_name="action", lookup_expr="exact")
    action_prefix = django_filters.CharFilter(
        field_name="action", lookup_expr="startswith", label="Actions starting with this text, e.g. auth."
    )
    # The copied username, so events of since-deleted users are still found.
    actor = django_filters.CharFilter(field_name="actor_username", lookup_expr="exact", label="Actor's username")
    object_type = django_filters.CharFilter(field_name="object_type", lookup_expr="exact")
    object_id = django_filters.CharFilter(field_name="object_id", lookup_expr="exact")
    outcome = django_filters.ChoiceFilter(field_name="outcome", choices=Outcome.choices)
    since = StorableIsoDateTimeFilter(
        field_name="timestamp", lookup_expr="gte", label="Events at or after this ISO 8601 time"
    )
    until = StorableIsoDateTimeFilter(
        field_name="timestamp", lookup_expr="lt", label="Events before this ISO 8601 time"
    )

    class Meta:
        model = AuditEvent
        fields = ["action", "action_prefix", "actor", "object_type", "object_id", "outcome", "since", "until"]

    def period(self) -> tuple[datetime | None, datetime | None]:
        """The cleaned ``since`` and ``until`` of a valid filterset."""
        return self.form.cleaned_data.get("since"), self.form.cleaned_data.get("until")
