"""CSV cells that a spreadsheet cannot run as formulas (OWASP "CSV Injection").

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (or as one after the whitespace), so text written by an outsider —
a User-Agent, a username tried at the login page, a text sent for inference — could run when an officer opens
the export. Such a cell gets a leading single quote, which spreadsheets show as text. Quoting and embedded
quotes are left to the ``csv`` module, which escapes them as RFC 4180 says.

Only text is changed: numbers written as numbers (an id, a score of -0.5) stay numbers, since a spreadsheet
reads them as values and they cannot carry a formula. JSON and JSON Lines exports are never changed.

The same rule exists once more in SQL, as the PostgreSQL function ``CSV_CELL_SQL_FUNCTION`` (created by
``apps/core/migrations/0002_csv_cell_function.py``) for CSV that the database writes itself with COPY; the tests
check both against one table of inputs.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

# The first characters that make a spreadsheet read a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
# The PostgreSQL function (text -> text) that applies the same rule in SQL.
CSV_CELL_SQL_FUNCTION = "opsdeck_csv_cell"


def csv_cell(value: Any) -> Any:
    """``value`` as a CSV cell: text starting like a formula gets a leading ``'``; anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return ESCAPE + value
    return value


class SafeCsvWriter:
    """A ``csv.writer`` whose every cell goes through ``csv_cell``; takes the same arguments."""

    def __init__(self, file, **options):
        self._writer = csv.writer(file, **options)

    def writerow(self, row: Iterable) -> Any:
        return self._writer.writerow([csv_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable]) -> None:
        for row in rows:
            self.writerow(row)
