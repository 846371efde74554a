from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination
from rest_framework.response import Response

from apps.core.api.ordering import time_range_ordering
from apps.core.paginators import EXACT_COUNT_LIMIT, BoundedCountPaginator


class LimitedPageSizeMixin:
    """A ``page_size`` query parameter up to API_MAX_PAGE_SIZE; a value above it is refused, not silently cut."""

    page_size_query_param = "page_size"

    @property
    def max_page_size(self) -> int:
        return settings.API_MAX_PAGE_SIZE

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdigit() or not 1 <= int(raw) <= self.max_page_size:
            raise ValidationError(
                {self.page_size_query_param: [f"Must be a whole number from 1 to {self.max_page_size}."]},
                code="invalid_page_size",
            )
        return int(raw)


class StandardPagination(LimitedPageSizeMixin, PageNumberPagination):
    """Page numbers, as every list has always had them, fast on tables of millions of rows.

    Page-number rather than cursor pagination keeps the lists' shape and their ``page`` parameter, and serves
    every ordering (cursors cannot order by a nullable field such as ``finished_at``). What made large lists slow
    was the COUNT(*) over every matching row on each page: the count is now exact up to EXACT_COUNT_LIMIT rows,
    an estimate above it (``count_exact`` says which; see BoundedCountPaginator). A deep page still costs its
    offset; filters such as ``created_before`` reach old rows directly.
    """

    django_paginator_class = BoundedCountPaginator
    # "last" would need the exact count; the browsable API's page links too.
    last_page_strings = ()
    template = None
    # Says why: no such page, or one deeper than MAX_PAGE_START.
    invalid_page_message = "Invalid page: {message}"

    def get_paginated_response(self, data):
        count, exact = self.page.paginator.bounded_count
        return Response(
            {
                "count": count,
                "count_exact": exact,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"]["count_exact"] = {
            "type": "boolean",
            "description": f"False when more than {EXACT_COUNT_LIMIT} rows match: count is then an estimate.",
        }
        response["required"] = [*response.get("required", []), "count_exact"]
        return response


class NewestFirstCursorPagination(LimitedPageSizeMixin, CursorPagination):
    """Cursor pagination, newest id first: stable and cheap on tables too large to count.

    A request narrowed to a time range the view names in ``time_ranges`` pages newest first along that time
    instead (see time_range_ordering); the cursor then holds a time, and an offset among equal times.
    """

    ordering = "-id"

    def get_ordering(self, request, queryset, view):
        return time_range_ordering(request, view) or super().get_ordering(request, queryset, view)
