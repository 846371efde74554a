"""List ordering that pages cleanly and stays on an index."""

from rest_framework.filters import OrderingFilter


class StableOrderingFilter(OrderingFilter):
    """Ties are broken by id, so that pages of a non-unique ordering (created_at, size) neither repeat nor skip rows.

    The id runs in the direction of the field before it: ``created_at, id`` and ``-created_at, -id`` are the two
    directions of one (created_at, id) index, which each offered ordering has; a mixed ``created_at, -id`` would
    match no index and make PostgreSQL sort every row (2 s at a million jobs).
    """

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if ordering and not any(field.lstrip("-") == "id" for field in ordering):
            return [*ordering, "-id" if ordering[-1].startswith("-") else "id"]
        return ordering
