"""The PDF report's layout: a cover an auditor can read, then one table per section, on numbered pages.

Imported only when a PDF is rendered (reportlab is needed for nothing else). Tables are laid out a chunk of rows at a
time, topped up from a generator, so memory does not grow with the number of rows.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import BinaryIO
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from .pdf_text import counted, filters_text, kind_label, short_fingerprint, shown, title
from .rendering import PDF_CHUNK_ROWS, PDF_MAX_CELL_CHARS, PDF_SUMMARY_VALUE_CHARS, SpooledSection

PAGE_SIZE = landscape(A4)
MARGIN = 12 * mm
FRAME_PADDING = 6  # platypus' default padding inside the page's frame, on each side
AVAILABLE_WIDTH = PAGE_SIZE[0] - 2 * MARGIN - 2 * FRAME_PADDING
CELL_PADDING = 2  # points left and right of a cell's text
# No column is preferred wider than this share of the page: one long free-text column must not starve the others.
MAX_PREFERRED_SHARE = 0.35
# A table whose cells all fit on one line is widened by up to this factor (air between columns), not to the full
# page: three short columns spread over a landscape page are hard to read across.
MAX_WIDENING = 1.4
# A section goes on below the one before only when this much of the page is left.
SECTION_ROOM = 80 * mm
HEADER_BLUE = colors.HexColor("#417690")  # the admin's header blue
FINDING_RED = colors.HexColor("#fde2e1")
GRID_GREY = colors.HexColor("#bbbbbb")
FOOTER_GREY = colors.HexColor("#555555")

_styles = getSampleStyleSheet()
TITLE = _styles["Title"]
HEADING = _styles["Heading2"]
SUBHEADING = ParagraphStyle("subheading", parent=_styles["Heading3"], spaceBefore=6)
BODY = _styles["BodyText"]
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10)
SMALL_BOLD = ParagraphStyle("small-bold", parent=SMALL, fontName="Helvetica-Bold")
CELL = ParagraphStyle("cell", parent=BODY, fontSize=6.5, leading=8)
HEADER_CELL = ParagraphStyle("header", parent=CELL, fontName="Helvetica-Bold", textColor=colors.white)
HEADER_CELL_RIGHT = ParagraphStyle("header-right", parent=HEADER_CELL, alignment=TA_RIGHT)


def _p(text, style=CELL) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _code(text: str) -> str:
    return f'<font face="Courier">{escape(text)}</font>'


def _width(text: str, style: ParagraphStyle) -> float:
    return stringWidth(text, style.fontName, style.fontSize)


def _truncated(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _grid_style(header: bool = False) -> TableStyle:
    style = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.25, GRID_GREY),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), CELL_PADDING),
            ("RIGHTPADDING", (0, 0), (-1, -1), CELL_PADDING),
            ("TOPPADDING", (0, 0), (-1, -1), 1),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1),
        ]
    )
    if header:
        style.add("BACKGROUND", (0, 0), (-1, 0), HEADER_BLUE)
        style.add("TEXTCOLOR", (0, 0), (-1, 0), colors.white)
    return style


def column_widths(least: list[float], unbroken: list[float], preferred: list[float], available: float) -> list[float]:
    """Widths of a table's columns, from three wishes per column, each at least the one before.

    ``least``: the header's longest word; ``unbroken``: the longest word of any cell; ``preferred``: the typical
    cell on one line. Everyone gets ``preferred`` when it fits (widened a little when there is room); else
    ``unbroken`` plus a share of what is left. When even the words do not fit, the columns with the longest words
    (hashes, say) give way one by one until the others fit whole: only the words of those columns are broken.
    """
    if sum(preferred) <= available:
        return [width * min(available / sum(preferred), MAX_WIDENING) for width in preferred]
    if sum(unbroken) <= available:
        spare = (available - sum(unbroken)) / (sum(preferred) - sum(unbroken))
        return [low + (high - low) * spare for low, high in zip(unbroken, preferred, strict=True)]
    widths = list(unbroken)
    giving_way: list[int] = []
    for index in sorted(range(len(widths)), key=lambda index: -unbroken[index]):
        if sum(widths) <= available:
            break
        giving_way.append(index)
        widths[index] = least[index]
    if sum(widths) > available:  # even the headers' words do not fit: everything shrinks alike
        return [width * available / sum(widths) for width in widths]
    # What is left goes to the columns that gave way, in proportion to how much they lack.
    spare = available - sum(widths)
    lacking = {index: unbroken[index] - least[index] for index in giving_way}
    for index, lack in lacking.items():
        widths[index] += spare * lack / sum(lacking.values())
    return widths


def _numbered_canvas(footer):
    """A canvas that keeps its pages until the last one, so that each footer can say "Page N of M"."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._held_pages: list[dict] = []

        def showPage(self):
            self._held_pages.append(dict(self.__dict__))
            self._startPage()

        def save(self):
            total = len(self._held_pages)
            for page in self._held_pages:
                self.__dict__.update(page)
                footer(self, total)
                super().showPage()
            super().save()

    return NumberedCanvas


def _numeric_columns(rows: list[list]) -> list[int]:
    """Columns whose values are all numbers (or empty): right-aligned, so that their digits line up."""
    numeric = []
    for index, values in enumerate(zip(*rows, strict=True)):
        present = [value for value in values if value not in (None, "")]
        if present and all(isinstance(value, int | float) and not isinstance(value, bool) for value in present):
            numeric.append(index)
    return numeric


class _SectionMark(Flowable):
    """Takes no room: where it is drawn, the canvas learns which section's rows follow (``None`` after a section's
    last row), so that a page continuing a section can be headed with its title."""

    def __init__(self, section_title: str | None):
        super().__init__()
        self.section_title = section_title

    def wrap(self, available_width, available_height):
        return 0, 0

    def draw(self):
        self.canv.opsdeck_section = self.section_title


def _running_header(canvas: Canvas, doc) -> None:
    # Called as a page begins: a section still going on from the page before is named at the top.
    section = getattr(canvas, "opsdeck_section", None)
    if section:
        canvas.saveState()
        canvas.setFont("Helvetica", 8)
        canvas.setFillColor(FOOTER_GREY)
        canvas.drawString(MARGIN + FRAME_PADDING, PAGE_SIZE[1] - 8 * mm, f"{section} (continued)")
        canvas.restoreState()


class PdfReport:
    """The PDF's layout: a cover (facts, how to verify, summary, key facts), then one table per section."""

    def __init__(self, meta: dict, sections: list[SpooledSection], rows_digest: str):
        self.meta, self.sections, self.rows_digest = meta, sections, rows_digest

    # Page furniture

    def _footer(self, canvas: Canvas, total: int) -> None:
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(FOOTER_GREY)
        y = 7 * mm
        canvas.drawString(
            MARGIN,
            y,
            f"{self.meta.get('title', 'Report')} · SHA-256 of this file: in the manifest beside it · "
            f"Rows digest (SHA-256): {self.rows_digest}",
        )
        canvas.drawRightString(PAGE_SIZE[0] - MARGIN, y, f"Page {canvas.getPageNumber()} of {total}")
        canvas.restoreState()

    # The cover

    def _period(self) -> str:
        return f"{shown(self.meta.get('period_start', ''))} to {shown(self.meta.get('period_end', ''))}"

    def _facts(self) -> list[tuple[str, str]]:
        meta = self.meta
        facts = [
            ("Kind", kind_label(meta.get("kind", ""))),
            ("Period", self._period()),
            ("Generated", f"{shown(meta.get('generated_at', ''))} by {meta.get('generated_by', '')}"),
            ("Filters", filters_text(meta.get("filters") or {})),
        ]
        if meta.get("report_id") is not None:
            facts.append(("Report", f"#{meta['report_id']}"))
        facts += [
            ("Audit head hash", meta.get("audit_head_hash", "")),
            ("Rows digest (SHA-256)", self.rows_digest),
        ]
        if meta.get("key_fingerprint"):
            facts.append(("Signing key", f"{short_fingerprint(meta['key_fingerprint'])} (full fingerprint below)"))
        return facts

    def _key_fact_pairs(self, entry: SpooledSection) -> list[tuple[str, str]]:
        return [
            (title(str(name)), _truncated(shown(value), PDF_SUMMARY_VALUE_CHARS))
            for name, value in entry.summary.items()
        ]

    def _two_columns(self, pairs: list[tuple[str, str]], names: float, heading: str | None = None) -> Table:
        """Names and values side by side, the names ``names`` wide (the same on the whole cover, so they align)."""
        rows = [[_p(heading, HEADER_CELL), ""]] if heading else []
        rows += [[_p(name, SMALL_BOLD), _p(value, SMALL)] for name, value in pairs]
        table = Table(rows, colWidths=[names, AVAILABLE_WIDTH - names], repeatRows=1 if heading else 0)
        style = _grid_style(header=bool(heading))
        if heading:
            style.add("SPAN", (0, 0), (-1, 0))
        table.setStyle(style)
        return table

    def _summary_table(self) -> Table:
        rows = [[_p("Section", HEADER_CELL), _p("Rows", HEADER_CELL_RIGHT), _p("Findings", HEADER_CELL_RIGHT)]]
        style = _grid_style(header=True)
        style.add("ALIGN", (1, 1), (-1, -1), "RIGHT")
        for entry in self.sections:
            findings = f"{entry.findings:,}" if entry.finding_index is not None else "-"
            rows.append([_p(entry.title, SMALL), f"{entry.count:,}", findings])
            if entry.findings:
                style.add("BACKGROUND", (0, len(rows) - 1), (-1, len(rows) - 1), FINDING_RED)
        style.add("FONT", (1, 1), (-1, -1), SMALL.fontName, SMALL.fontSize, SMALL.leading)
        table = Table(rows, colWidths=[AVAILABLE_WIDTH - 50 * mm, 25 * mm, 25 * mm], repeatRows=1)
        table.setStyle(style)
        return table

    def _how_to_verify(self) -> list:
        meta = self.meta
        manifest_url = f"GET /api/v1/compliance/reports/{meta.get('report_id', '{id}')}/manifest/"
        # Markup of our own (commands in a fixed-width font) around text of our own; the fingerprint is escaped.
        text = (
            "Its SHA-256 and Ed25519 signature are in its manifest, the file of the same name ending in "
            f"{_code('.manifest.json')} (also served at {_code(manifest_url)}"
            f"). In the portal, {_code('python manage.py report verify report.pdf report.pdf.manifest.json')} "
            "checks both and says which failed. Without the portal, check the manifest's signature with the public key "
            f"({_code('GET /api/v1/compliance/public-key/')}, obtained once through another channel), then that the "
            "file's SHA-256 equals the manifest's sha256 (recipes for Python and OpenSSL 3: “For compliance "
            "officers” in the portal's documentation)."
        )
        if meta.get("key_fingerprint"):
            text += (
                " The signing key's fingerprint, SHA-256 of its raw public key, is "
                f"<b>{escape(meta['key_fingerprint'])}</b>."
            )
        return [_p("How to verify this file", SUBHEADING), Paragraph(text, SMALL)]

    def _cover(self) -> Iterator:
        facts = self._facts()
        with_facts = [entry for entry in self.sections if entry.summary]
        names = [name for name, _ in facts] + [name for entry in with_facts for name, _ in self._key_fact_pairs(entry)]
        names_width = max(_width(name, SMALL_BOLD) for name in names) + 2 * CELL_PADDING + 2
        yield _p(self.meta.get("title", "Report"), TITLE)
        yield _p(self._period(), ParagraphStyle("period", parent=BODY, alignment=1))
        yield Spacer(1, 4 * mm)
        yield self._two_columns(facts, names_width)
        yield from self._how_to_verify()
        yield _p("Summary", HEADING)
        yield self._summary_table()
        if with_facts:
            yield _p("Key facts", HEADING)
        for entry in with_facts:
            yield self._two_columns(self._key_fact_pairs(entry), names_width, heading=entry.title)
            yield Spacer(1, 3 * mm)
        yield PageBreak()

    # The sections

    def _widths(self, entry: SpooledSection, sample: list[list[str]]) -> list[float]:
        pad = 2 * CELL_PADDING + 1
        least, unbroken, preferred = [], [], []
        for index, column in enumerate(entry.columns):
            heading = title(column)
            header_word = max(_width(word, HEADER_CELL) for word in heading.split()) + pad
            least.append(header_word)
            words = [_width(word, CELL) + pad for _, word in entry.long_words[index]]
            unbroken.append(max(header_word, *words))
            lengths = sorted(_width(row[index], CELL) for row in sample)
            typical = lengths[int(len(lengths) * 0.9)] + pad if lengths else 0
            wish = max(typical, _width(heading, HEADER_CELL) + pad)
            preferred.append(max(unbroken[-1], min(wish, AVAILABLE_WIDTH * MAX_PREFERRED_SHARE)))
        return column_widths(least, unbroken, preferred, AVAILABLE_WIDTH)

    def _cell(self, text: str, width: float):
        # Text that fits on one line is drawn as a plain string, much cheaper to lay out than a Paragraph. No
        # character is wider than an em: text short enough is not measured (measuring costs as much as drawing).
        room = width - 2 * CELL_PADDING
        if "\n" not in text and (len(text) * CELL.fontSize <= room or _width(text, CELL) <= room):
            return text
        return _p(_truncated(text, PDF_MAX_CELL_CHARS))

    def _section_story(self, entry: SpooledSection, spool: BinaryIO) -> Iterator:
        yield _SectionMark(entry.title)
        yield _p(f"{entry.title} ({counted(entry.count, 'row')})", HEADING)
        if entry.findings:
            column = title(entry.columns[entry.finding_index])
            verb = "is" if entry.findings == 1 else "are"
            yield _p(f"{counted(entry.findings, 'row')} with findings {verb} highlighted (column “{column}”).", SMALL)
        yield Spacer(1, 2 * mm)
        if not entry.count:
            yield _p("No rows in this period.", BODY)
        widths: list[float] | None = None
        numeric: list[int] = []
        header: list[Paragraph] = []
        remaining = entry.count
        while remaining:
            size = min(PDF_CHUNK_ROWS, remaining)
            remaining -= size
            chunk = [json.loads(spool.readline())[1] for _ in range(size)]
            texts = [[shown(value) for value in values] for values in chunk]
            if widths is None:
                widths = self._widths(entry, texts)
                numeric = _numeric_columns(chunk)
                header = [
                    _p(title(column), HEADER_CELL_RIGHT if index in numeric else HEADER_CELL)
                    for index, column in enumerate(entry.columns)
                ]
            style = _grid_style(header=True)
            style.add("FONT", (0, 1), (-1, -1), CELL.fontName, CELL.fontSize, CELL.leading)
            cells = [header]
            for number, (values, row) in enumerate(zip(chunk, texts, strict=True), 1):
                cells.append([self._cell(text, width) for text, width in zip(row, widths, strict=True)])
                if entry.finding_index is not None and values[entry.finding_index] not in (None, "", [], {}):
                    style.add("BACKGROUND", (0, number), (-1, number), FINDING_RED)
            for index in numeric:
                style.add("ALIGN", (index, 1), (index, -1), "RIGHT")
            table = Table(cells, colWidths=widths, repeatRows=1, hAlign="LEFT")
            table.setStyle(style)
            yield table
        yield _SectionMark(None)

    def _story(self, spool: BinaryIO) -> Iterator:
        yield from self._cover()
        for index, entry in enumerate(self.sections):
            if index:  # a section starts on a new page unless the one before left enough room (an empty one)
                yield CondPageBreak(SECTION_ROOM)
            yield from self._section_story(entry, spool)

    def build(self, out: BinaryIO, spool: BinaryIO) -> None:
        meta = self.meta
        story = self._story(spool)
        first = list(itertools.islice(story, 3))

        class StreamingDoc(SimpleDocTemplate):
            # platypus lays out a list of flowables; this one is topped up from a generator as it drains, so
            # only a chunk's table is in memory at a time. (It also handles its own internal lists: not those.)
            def handle_flowable(self, flowables):
                super().handle_flowable(flowables)
                while flowables is first and len(flowables) < 3:
                    following = next(story, None)
                    if following is None:
                        break
                    flowables.append(following)

        doc = StreamingDoc(
            out,
            pagesize=PAGE_SIZE,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=MARGIN,
            bottomMargin=14 * mm,
            title=str(meta.get("title", "Report")),
            author=str(meta.get("generated_by", "")),
            subject=f"{kind_label(meta.get('kind', ''))}, {self._period()}",
            creator="Opsdeck",
        )
        doc.build(
            first, onFirstPage=_running_header, onLaterPages=_running_header, canvasmaker=_numbered_canvas(self._footer)
        )
