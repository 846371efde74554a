"""Server-side pictures of the drift watch: one feature's window against its reference, as an SVG bar chart.

Horizontal bars, one pair per bin, so that long labels fit and the chart scales down to a phone's width; no
JavaScript, no asset. Every piece of input (labels come from uploaded models) is escaped.
"""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from .drift import FeatureDrift

WIDTH = 360
LABEL_WIDTH = 96
VALUE_WIDTH = 44
ROW_HEIGHT = 26
BAR_HEIGHT = 9
TOP = 30  # the legend
MAX_BINS = 12
MAX_LABEL_CHARS = 14
REFERENCE_COLOUR = "#94a3b8"
WINDOW_COLOUR = "#417690"
DRIFT_COLOUR = "#b42318"


def drift_chart_svg(feature: FeatureDrift, *, chart_id: str, window_hours: int) -> SafeString:
    """Bars of the share of each bin in the evaluation (grey) and in the window (blue, red when the feature
    drifts); past MAX_BINS bins, the rest are summed as "other"."""
    bins = _folded(feature.bins)
    plot = WIDTH - LABEL_WIDTH - VALUE_WIDTH
    tallest = max((max(expected, actual) for _, expected, actual in bins), default=0) or 1
    window_colour = DRIFT_COLOUR if feature.status == "drift" else WINDOW_COLOUR
    rows = []
    for index, (value, expected, actual) in enumerate(bins):
        top = TOP + index * ROW_HEIGHT
        rows.append(
            (
                f"{value}: evaluation {expected:.1%}, last {window_hours} h {actual:.1%}",
                LABEL_WIDTH - 6,
                top + 13,
                _short(value),
                LABEL_WIDTH,
                top + 3,
                _number(plot * expected / tallest),
                LABEL_WIDTH,
                top + 3 + BAR_HEIGHT + 1,
                _number(plot * actual / tallest),
                window_colour,
                WIDTH - 2,
                top + 13,
                f"{actual:.0%}",
            )
        )
    height = TOP + max(len(bins), 1) * ROW_HEIGHT + 4
    psi = "not computed yet" if feature.psi is None else f"{feature.psi:.2f}"
    description = f"PSI {psi}. " + "; ".join(row[0] for row in rows) if rows else "No predictions."
    bars = format_html_join(
        "",
        '<g class="bin"><title>{}</title>'
        '<text x="{}" y="{}" text-anchor="end" font-size="11">{}</text>'
        '<rect x="{}" y="{}" width="{}" height="' + str(BAR_HEIGHT) + '" fill="' + REFERENCE_COLOUR + '"/>'
        '<rect x="{}" y="{}" width="{}" height="' + str(BAR_HEIGHT) + '" fill="{}"/>'
        '<text x="{}" y="{}" text-anchor="end" font-size="11">{}</text></g>',
        rows,
    )
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="drift-chart" role="img" width="{w}" height="{h}" '
        'viewBox="0 0 {w} {h}" aria-labelledby="{id}-title {id}-desc" font-family="sans-serif" '
        'fill="currentColor"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>'
        '<rect x="{lx}" y="6" width="10" height="10" fill="{rc}"/>'
        '<text x="{lt}" y="15" font-size="11">evaluation</text>'
        '<rect x="{wx}" y="6" width="10" height="10" fill="{wc}"/><text x="{wt}" y="15" font-size="11">'
        "last {hours} h</text>{bars}</svg>",
        w=WIDTH,
        h=height,
        id=chart_id,
        title=f"{feature.name}: last {window_hours} h against the evaluation",
        desc=description,
        lx=LABEL_WIDTH,
        lt=LABEL_WIDTH + 14,
        rc=REFERENCE_COLOUR,
        wx=LABEL_WIDTH + 90,
        wt=LABEL_WIDTH + 104,
        wc=window_colour,
        hours=window_hours,
        bars=bars,
    )


def _folded(bins: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    if len(bins) <= MAX_BINS:
        return bins
    kept, rest = bins[: MAX_BINS - 1], bins[MAX_BINS - 1 :]
    return [*kept, ("other", sum(item[1] for item in rest), sum(item[2] for item in rest))]


def _short(value: str) -> str:
    return value if len(value) <= MAX_LABEL_CHARS else value[: MAX_LABEL_CHARS - 1] + "…"


def _number(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")
