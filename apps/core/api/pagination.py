from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination, PageNumberPagination


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
    """Page-number pagination for ordinary lists."""


class NewestFirstCursorPagination(LimitedPageSizeMixin, CursorPagination):
    """Cursor pagination, newest id first: stable and cheap on tables too large to count."""

    ordering = "-id"
