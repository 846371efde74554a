"""List ordering that pages cleanly."""

from rest_framework.filters import OrderingFilter


class StableOrderingFilter(OrderingFilter):
    """Ties are broken by id, so that pages of a non-unique ordering (priority, shots) neither repeat nor skip rows."""

    def get_ordering(self, request, queryset, view):
        ordering = super().get_ordering(request, queryset, view)
        if ordering and not any(field.lstrip("-") == "id" for field in ordering):
            return [*ordering, "-id"]
        return ordering
