"""Server-side pictures of a job: the counts histogram as SVG and the circuit as a text drawing.

Both are shared by the admin and the dashboard's job page; neither needs JavaScript or any asset.
"""

from __future__ import annotations

import hashlib

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .circuits import CircuitError, circuit_parse

# Histogram geometry, in SVG user units (pixels at 100 %).
PLOT_HEIGHT = 200
MARGIN_LEFT = 64
MARGIN_RIGHT = 16
MARGIN_TOP = 44
CHAR_WIDTH = 6.6  # of the 11-unit monospace labels
MIN_SLOT_WIDTH = 20
# Room for the heading and the axis title however few bars there are.
MIN_WIDTH = 320
# Longer bitstrings are shortened on the axis; the bar's tooltip keeps them whole.
MAX_LABEL_CHARS = 32
BAR_COLOUR = "#417690"

# Drawing a circuit costs time and text in proportion to its wires times its depth: past these
# limits the admin page would take seconds and megabytes, so the drawing is replaced by a note.
DRAWING_FOLD = 120
MAX_DRAWN_SOURCE_CHARS = 50_000
MAX_DRAWN_OPERATIONS = 1_000
MAX_DRAWN_CELLS = 10_000
MAX_DRAWING_CHARS = 200_000


def histogram_svg(counts: dict[str, int], *, max_bars: int = 64, title: str = "Measurement counts") -> SafeString:
    """An accessible SVG bar chart of ``counts``, one bar per bitstring in bitstring order.

    With more outcomes than ``max_bars`` the most frequent ones are shown and a
    note says how many were left out. Every piece of input is escaped.
    """
    if max_bars < 1:
        raise ValueError(f"max_bars must be at least 1; got {max_bars}.")
    outcomes = {str(bitstring): max(int(count), 0) for bitstring, count in counts.items()}
    total = sum(outcomes.values())
    shown = sorted(outcomes.items(), key=lambda item: (-item[1], item[0]))[:max_bars]
    shown.sort()
    left_out = len(outcomes) - len(shown)
    left_out_shots = total - sum(count for _, count in shown)
    ids = _svg_ids(outcomes)
    description = _description(len(outcomes), total, left_out, left_out_shots)
    if not shown:
        return format_html(
            '<svg xmlns="http://www.w3.org/2000/svg" class="histogram" role="img" width="320" height="48" '
            'viewBox="0 0 320 48" aria-labelledby="{} {}"><title id="{}">{}</title><desc id="{}">{}</desc>'
            '<text x="8" y="28" font-family="sans-serif" font-size="13" fill="currentColor">{}</text></svg>',
            ids["title"],
            ids["desc"],
            ids["title"],
            title,
            ids["desc"],
            description,
            description,
        )

    tallest = max(count for _, count in shown) or 1
    slot = max(MIN_SLOT_WIDTH, CHAR_WIDTH * 0.9 * len(f"{tallest:,}") + 8)
    longest_label = min(max(len(bitstring) for bitstring, _ in shown), MAX_LABEL_CHARS + 1)
    label_height = CHAR_WIDTH * longest_label + 12
    width = max(MIN_WIDTH, MARGIN_LEFT + slot * len(shown) + MARGIN_RIGHT)
    axis_y = MARGIN_TOP + PLOT_HEIGHT
    height = axis_y + label_height + 40

    bars = []
    for index, (bitstring, count) in enumerate(shown):
        x = MARGIN_LEFT + index * slot
        bar_height = PLOT_HEIGHT * count / tallest
        centre = x + slot / 2
        share = 100 * count / total if total else 0.0
        bars.append(
            (
                f"{bitstring}: {count:,} shots ({share:.1f} %)",
                _number(x + 2),
                _number(axis_y - bar_height),
                _number(slot - 4),
                _number(bar_height),
                _number(centre),
                _number(axis_y - bar_height - 4),
                f"{count:,}",
                _number(centre + 4),
                _number(axis_y + 8),
                _number(centre + 4),
                _number(axis_y + 8),
                _short_label(bitstring),
            )
        )
    bar_elements = format_html_join(
        "",
        '<g class="bar"><title>{}</title>'
        '<rect x="{}" y="{}" width="{}" height="{}" fill="' + BAR_COLOUR + '"/>'
        '<text class="count" x="{}" y="{}" text-anchor="middle" font-size="10">{}</text>'
        '<text class="label" x="{}" y="{}" transform="rotate(-90 {} {})" text-anchor="end" '
        'font-family="monospace" font-size="11">{}</text></g>',
        bars,
    )
    note = (
        format_html(
            '<text class="left-out" x="{}" y="{}" font-size="12">{}</text>',
            MARGIN_LEFT,
            _number(height - 8),
            f"{left_out:,} less frequent outcome{'s' if left_out != 1 else ''} ({left_out_shots:,} shots) not shown.",
        )
        if left_out
        else ""
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="histogram" role="img" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" aria-labelledby="{tid} {did}" font-family="sans-serif" fill="currentColor">'
        '<title id="{tid}">{title}</title><desc id="{did}">{desc}</desc>'
        '<text class="heading" x="{left}" y="20" font-size="14" font-weight="bold">{title}</text>'
        '<line x1="{left}" y1="{top}" x2="{left}" y2="{axis}" stroke="currentColor"/>'
        '<line x1="{left}" y1="{axis}" x2="{right}" y2="{axis}" stroke="currentColor"/>'
        '<text class="axis-title" x="14" y="{middle}" transform="rotate(-90 14 {middle})" text-anchor="middle" '
        'font-size="12">Shots</text>'
        '<text class="tick" x="{tick_x}" y="{tick_top}" text-anchor="end" font-size="10">{tallest}</text>'
        '<text class="tick" x="{tick_x}" y="{axis}" text-anchor="end" font-size="10">0</text>'
        "{bars}"
        '<text class="axis-title" x="{left}" y="{axis_title_y}" font-size="12">Outcome (bitstring)</text>'
        "{note}</svg>",
        w=_number(width),
        h=_number(height),
        tid=ids["title"],
        did=ids["desc"],
        title=title,
        desc=description,
        left=MARGIN_LEFT,
        right=_number(MARGIN_LEFT + slot * len(shown)),
        top=MARGIN_TOP,
        axis=axis_y,
        middle=MARGIN_TOP + PLOT_HEIGHT // 2,
        tick_x=MARGIN_LEFT - 4,
        tick_top=MARGIN_TOP + 4,
        tallest=f"{tallest:,}",
        bars=bar_elements,
        axis_title_y=_number(axis_y + label_height + 16),
        note=note,
    )


def _svg_ids(outcomes: dict[str, int]) -> dict[str, str]:
    # Stable per content, so that two different histograms on one page never share an id.
    digest = hashlib.blake2s(repr(sorted(outcomes.items())).encode(), digest_size=5).hexdigest()
    return {"title": f"histogram-{digest}-title", "desc": f"histogram-{digest}-desc"}


def _description(outcomes: int, total: int, left_out: int, left_out_shots: int) -> str:
    if not outcomes:
        return "No counts to show."
    text = f"{outcomes:,} distinct outcome{'s' if outcomes != 1 else ''} over {total:,} shots."
    if left_out:
        text += (
            f" The {outcomes - left_out:,} most frequent are shown; {left_out:,} ({left_out_shots:,} shots) are not."
        )
    return text


def _short_label(bitstring: str) -> str:
    return bitstring if len(bitstring) <= MAX_LABEL_CHARS else bitstring[:MAX_LABEL_CHARS] + "…"


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def circuit_text_drawing(source: str, qasm_version: int, measure_all: bool) -> str:
    """The circuit as Qiskit's text drawing (plain text, to be escaped by the caller), as it ran.

    Circuits too large to draw usefully get a one-line note instead, and so do
    programs that no longer parse.
    """
    if len(source) > MAX_DRAWN_SOURCE_CHARS:
        return (
            f"Not drawn: the program is {len(source):,} characters long; "
            f"circuits are drawn up to {MAX_DRAWN_SOURCE_CHARS:,} characters."
        )
    try:
        circuit = circuit_parse(source, qasm_version)
    except CircuitError as exc:
        return f"Not drawn: {exc}"
    if measure_all:
        circuit.measure_all()
    operations = circuit.size()
    if operations > MAX_DRAWN_OPERATIONS:
        return (
            f"Not drawn: the circuit has {operations:,} operations; "
            f"circuits are drawn up to {MAX_DRAWN_OPERATIONS:,} operations."
        )
    wires = circuit.num_qubits + len(circuit.cregs)
    depth = circuit.depth()
    if wires * depth > MAX_DRAWN_CELLS:
        return (
            f"Not drawn: {wires:,} wires at depth {depth:,} make {wires * depth:,} cells; "
            f"circuits are drawn up to {MAX_DRAWN_CELLS:,} (wires times depth)."
        )
    drawing = circuit.draw(output="text", fold=DRAWING_FOLD).single_string()
    if len(drawing) > MAX_DRAWING_CHARS:
        return (
            f"Not drawn: the drawing would be {len(drawing):,} characters; "
            f"drawings are shown up to {MAX_DRAWING_CHARS:,} characters."
        )
    return drawing


# Line chart geometry and the colours of its series (one per observable; they repeat past eight).
CHART_WIDTH = 640
CHART_PLOT_HEIGHT = 240
CHART_MARGIN_LEFT = 64
CHART_MARGIN_RIGHT = 16
CHART_MARGIN_TOP = 36
LEGEND_ROW = 18
SERIES_COLOURS = ("#417690", "#c0392b", "#2e8b57", "#8e44ad", "#d68910", "#1f618d", "#7b7d7d", "#b03a2e")
MAX_LEGEND_CHARS = 48


def observable_label(terms: list) -> str:
    """An observable as written: ``1·ZZ + 0.5·XI``."""
    text = " ".join(f"{'-' if coefficient < 0 else '+'} {abs(coefficient):g}·{pauli}" for pauli, coefficient in terms)
    return text.removeprefix("+ ").replace("- ", "-", 1) if text.startswith("-") else text.removeprefix("+ ")


def expectation_chart_svg(parameter: str, results: list[dict], observables: list) -> SafeString:
    """An accessible SVG line chart of each observable's expectation value over one swept parameter.

    Points are joined in the parameter's order; each has its ±1 standard error as a bar. Every piece of input
    is escaped.
    """
    points = sorted(
        ((entry["parameters"][parameter], entry["expectation_values"], entry["std_errors"]) for entry in results),
        key=lambda point: point[0],
    )
    xs = [x for x, _, _ in points]
    lows = [value - error for _, values, errors in points for value, error in zip(values, errors, strict=True)]
    highs = [value + error for _, values, errors in points for value, error in zip(values, errors, strict=True)]
    y_low, y_high = min(lows), max(highs)
    if y_high - y_low < 1e-9:
        y_low, y_high = y_low - 1, y_high + 1
    x_low, x_high = min(xs), max(xs)
    x_span = (x_high - x_low) or 1.0
    plot_width = CHART_WIDTH - CHART_MARGIN_LEFT - CHART_MARGIN_RIGHT
    axis_y = CHART_MARGIN_TOP + CHART_PLOT_HEIGHT

    def at_x(x: float) -> float:
        return CHART_MARGIN_LEFT + plot_width * ((x - x_low) / x_span if x_high > x_low else 0.5)

    def at_y(y: float) -> float:
        return axis_y - CHART_PLOT_HEIGHT * (y - y_low) / (y_high - y_low)

    series = []
    for index in range(len(observables)):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        line = " ".join(f"{_number(at_x(x))},{_number(at_y(values[index]))}" for x, values, _ in points)
        bars = format_html_join(
            "",
            '<line class="error-bar" x1="{}" y1="{}" x2="{}" y2="{}" stroke="' + colour + '"/>'
            '<circle cx="{}" cy="{}" r="2.5" fill="' + colour + '"><title>{}</title></circle>',
            [
                (
                    _number(at_x(x)),
                    _number(at_y(values[index] - errors[index])),
                    _number(at_x(x)),
                    _number(at_y(values[index] + errors[index])),
                    _number(at_x(x)),
                    _number(at_y(values[index])),
                    f"{parameter} = {x:g}: {values[index]:.4f} ± {errors[index]:.4f}",
                )
                for x, values, errors in points
            ],
        )
        series.append(
            format_html(
                '<g class="series" data-observable="{}"><polyline fill="none" stroke="{}" stroke-width="1.5" '
                'points="{}"/>{}</g>',
                index,
                colour,
                line,
                bars,
            )
        )
    legend_top = axis_y + 44
    legend = format_html_join(
        "",
        '<g class="legend-entry"><rect x="{}" y="{}" width="12" height="12" fill="{}"/>'
        '<text x="{}" y="{}" font-size="12">{}</text></g>',
        [
            (
                CHART_MARGIN_LEFT,
                legend_top + row * LEGEND_ROW - 10,
                SERIES_COLOURS[row % len(SERIES_COLOURS)],
                CHART_MARGIN_LEFT + 18,
                legend_top + row * LEGEND_ROW,
                _short(f"⟨{observable_label(terms)}⟩"),
            )
            for row, terms in enumerate(observables)
        ],
    )
    height = legend_top + LEGEND_ROW * len(observables)
    title = f"Expectation values over {parameter}"
    description = (
        f"{len(observables)} observable{'s' if len(observables) != 1 else ''} at {len(points):,} values of "
        f"{parameter} from {x_low:g} to {x_high:g}; expectation values from {y_low:.3g} to {y_high:.3g} "
        "(bars: ±1 standard error)."
    )
    digest = hashlib.blake2s(repr((parameter, points)).encode(), digest_size=5).hexdigest()
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="expectation-chart" role="img" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" aria-labelledby="{tid} {did}" font-family="sans-serif" fill="currentColor">'
        '<title id="{tid}">{title}</title><desc id="{did}">{desc}</desc>'
        '<text class="heading" x="{left}" y="20" font-size="14" font-weight="bold">{title}</text>'
        '<line x1="{left}" y1="{top}" x2="{left}" y2="{axis}" stroke="currentColor"/>'
        '<line x1="{left}" y1="{axis}" x2="{right}" y2="{axis}" stroke="currentColor"/>'
        '<text class="tick" x="{tick_x}" y="{tick_top}" text-anchor="end" font-size="10">{y_high}</text>'
        '<text class="tick" x="{tick_x}" y="{axis}" text-anchor="end" font-size="10">{y_low}</text>'
        '<text class="tick" x="{left}" y="{x_ticks}" text-anchor="middle" font-size="10">{x_low}</text>'
        '<text class="tick" x="{right}" y="{x_ticks}" text-anchor="end" font-size="10">{x_high}</text>'
        '<text class="axis-title" x="14" y="{middle}" transform="rotate(-90 14 {middle})" text-anchor="middle" '
        'font-size="12">Expectation value</text>'
        '<text class="axis-title" x="{centre}" y="{x_title}" text-anchor="middle" font-size="12">{parameter}</text>'
        "{series}{legend}</svg>",
        w=CHART_WIDTH,
        h=_number(height),
        tid=f"chart-{digest}-title",
        did=f"chart-{digest}-desc",
        title=title,
        desc=description,
        left=CHART_MARGIN_LEFT,
        right=CHART_WIDTH - CHART_MARGIN_RIGHT,
        top=CHART_MARGIN_TOP,
        axis=axis_y,
        tick_x=CHART_MARGIN_LEFT - 4,
        tick_top=CHART_MARGIN_TOP + 4,
        y_high=f"{y_high:.3g}",
        y_low=f"{y_low:.3g}",
        x_low=f"{x_low:g}",
        x_high=f"{x_high:g}",
        x_ticks=axis_y + 14,
        middle=CHART_MARGIN_TOP + CHART_PLOT_HEIGHT // 2,
        centre=_number(CHART_MARGIN_LEFT + plot_width / 2),
        x_title=axis_y + 30,
        parameter=parameter,
        series=format_html_join("", "{}", ((item,) for item in series)),
        legend=legend,
    )


def _short(text: str) -> str:
    return text if len(text) <= MAX_LEGEND_CHARS else text[: MAX_LEGEND_CHARS - 1] + "…"
