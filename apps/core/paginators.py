"""Admin paginators shared by the apps with very large tables."""

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property


class EstimatedCountPaginator(Paginator):
    """Uses PostgreSQL's row estimate (pg_class.reltuples) for an unfiltered large table instead of COUNT(*).

    Any filter or search makes it count for real; so does a small or never-analysed
    table, where counting is cheap and an estimate would be needlessly wrong.
    """

    estimate_above = 10_000

    @cached_property
    def count(self) -> int:
        estimate = self._estimated_count()
        if estimate is not None and estimate > self.estimate_above:
            return estimate
        return super().count

    def _estimated_count(self) -> int | None:
        events = self.object_list
        if not isinstance(events, QuerySet):
            return None
        query = events.query
        if query.where or query.is_sliced or query.distinct or query.combinator:
            return None
        connection = connections[events.db]
        if connection.vendor != "postgresql":
            return None
        with connection.cursor() as cursor:
            cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [events.model._meta.db_table])
            row = cursor.fetchone()
        # reltuples is -1 until the table's first VACUUM or ANALYZE.
        return int(row[0]) if row and row[0] >= 0 else None
