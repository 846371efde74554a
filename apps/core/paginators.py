"""Paginators shared by the apps with very large tables: the admin's and the API's."""

from django.core.paginator import EmptyPage, Page, PageNotAnInteger, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property

# Up to this many rows a list's count is exact; counting further would cost a scan of every matching row.
EXACT_COUNT_LIMIT = 1_000
# Deepest row a page may start at: skipping further would scan that many rows (and past 2**63 - 1 the database
# refuses the offset outright). Filters and orderings reach any row sooner.
MAX_PAGE_START = 10_000_000


def table_row_estimate(rows) -> int | None:
    """PostgreSQL's row estimate (pg_class.reltuples) for an unfiltered queryset over one table; None otherwise.

    None for filtered, sliced or combined querysets, other databases and never-analysed tables.
    """
    if not isinstance(rows, QuerySet):
        return None
    query = rows.query
    if query.where or query.is_sliced or query.distinct or query.combinator:
        return None
    connection = connections[rows.db]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [rows.model._meta.db_table])
        row = cursor.fetchone()
    # reltuples is -1 until the table's first VACUUM or ANALYZE.
    return int(row[0]) if row and row[0] >= 0 else None


class EstimatedCountPaginator(Paginator):
    """Uses PostgreSQL's row estimate for an unfiltered large table instead of COUNT(*).

    Any filter or search makes it count for real; so does a small or never-analysed
    table, where counting is cheap and an estimate would be needlessly wrong.
    """

    estimate_above = 10_000

    @cached_property
    def count(self) -> int:
        estimate = table_row_estimate(self.object_list)
        if estimate is not None and estimate > self.estimate_above:
            return estimate
        return super().count


class BoundedPage(Page):
    """A page that knows whether another follows from the extra row it fetched, not from the count."""

    def __init__(self, rows, number: int, paginator: Paginator, more: bool):
        super().__init__(rows, number, paginator)
        self.more = more

    def has_next(self) -> bool:
        return self.more


class BoundedCountPaginator(Paginator):
    """Page numbers without COUNT(*) over the whole table on every page.

    Each page fetches one row more than it shows, which tells whether a next page exists. The count is then free
    on the last page (rows before it plus its own); otherwise it is counted up to EXACT_COUNT_LIMIT + 1 rows (a
    LIMITed subquery: an index range of at most that many entries). Beyond the limit an unfiltered table gives
    PostgreSQL's row estimate and a filtered list the limit plus one, and ``count_exact`` is False. Pages past the
    limit stay reachable: a page is refused only when it holds no rows.
    """

    def validate_number(self, number) -> int:
        try:
            number = int(number)
        except (TypeError, ValueError):
            raise PageNotAnInteger("That page number is not an integer") from None
        if number < 1:
            raise EmptyPage("That page number is less than 1")
        return number

    def page(self, number) -> BoundedPage:
        number = self.validate_number(number)
        start = (number - 1) * self.per_page
        if start > MAX_PAGE_START:
            raise EmptyPage(
                f"Pages start at most {MAX_PAGE_START:,} rows in, and this one would start at row {start + 1:,}; "
                "narrow the list with filters or another ordering."
            )
        rows = list(self.object_list[start : start + self.per_page + 1])
        more = len(rows) > self.per_page
        rows = rows[: self.per_page]
        if not rows and number > 1:
            raise EmptyPage("That page contains no results")
        self.rows_through_page = start + len(rows)
        self.more = more
        return BoundedPage(rows, number, self, more)

    @cached_property
    def bounded_count(self) -> tuple[int, bool]:
        """(count, exact) for the rows of the last page fetched."""
        if not self.more:
            return self.rows_through_page, True
        estimate = table_row_estimate(self.object_list)
        if self.rows_through_page < EXACT_COUNT_LIMIT and (estimate is None or estimate <= EXACT_COUNT_LIMIT):
            counted = self.object_list.order_by()[: EXACT_COUNT_LIMIT + 1].count()
            if counted <= EXACT_COUNT_LIMIT:
                return counted, True
        return max(estimate or 0, EXACT_COUNT_LIMIT + 1, self.rows_through_page + 1), False

    @cached_property
    def count(self) -> int:
        return self.bounded_count[0]
