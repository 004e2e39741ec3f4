"""Charts as SVG markup, drawn on the server: no chart library, no script.

Pure functions from numbers and words to an ``<svg>`` element for the page to include
(``Markup``, already escaped). Each chart:

- is ``role="img"`` with a ``<title>`` and ``<desc>`` it is labelled by;
- scales by its ``viewBox`` (``width``/``height`` come from CSS), drawn for a phone-width
  box so its words stay readable at 390 px;
- never tells things apart by colour alone: series differ by pattern (solid, hatched) or by
  marker shape, and the legend says which is which in words;
- uses presentation attributes only (no ``style``), as the pages' CSP allows no inline style.

The page puts a ``<table>`` with the same numbers beside every chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

WIDTH = 400
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 34, 8, 30, 34
FONT = 11
INK = "#0b0c0c"
GRID = "#b1b4b6"
# Two series: dark blue solid, and dark green hatched (AA contrast on white; told apart by
# pattern as well as colour).
COLOURS = ("#1d70b8", "#005a30")
MAX_LABELS = 8


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[int, ...]


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def nice_max(value: float) -> int:
    """A round top for the axis at or above ``value`` (1, 2, 5 × 10ⁿ), at least 1."""
    if value <= 1:
        return 1
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def _ticks(top: int) -> list[int]:
    if top <= 5:
        return list(range(0, top + 1))
    return [top * i // 4 for i in range(5)] if top % 4 == 0 else [top * i // 5 for i in range(6)]


def _label_every(count: int) -> int:
    return max(1, -(-count // MAX_LABELS))


def _frame(chart_id: str, title: str, desc: str, body: list[str]) -> Markup:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="xMidYMid meet" '
        f'aria-labelledby="{_e(chart_id)}-title {_e(chart_id)}-desc" '
        f'font-family="system-ui, sans-serif" font-size="{FONT}">'
        f'<title id="{_e(chart_id)}-title">{_e(title)}</title>'
        f'<desc id="{_e(chart_id)}-desc">{_e(desc)}</desc>'
    )
    return Markup(head + "".join(body) + "</svg>")


def _axes(top: int, unit: str, plot_h: float) -> list[str]:
    parts = []
    for tick in _ticks(top):
        y = TOP + plot_h - plot_h * tick / top
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="0.5"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"{tick}{_e(unit)}</text>"
        )
    base = TOP + plot_h
    parts.append(
        f'<line x1="{LEFT}" y1="{base:.1f}" x2="{WIDTH - RIGHT}" y2="{base:.1f}" '
        f'stroke="{INK}" stroke-width="1"/>'
    )
    return parts


def _x_labels(labels: Sequence[str], centre, base: float) -> list[str]:
    every = _label_every(len(labels))
    return [
        f'<text x="{centre(i):.1f}" y="{base + 14:.1f}" text-anchor="middle" fill="{INK}">'
        f"{_e(label)}</text>"
        for i, label in enumerate(labels)
        if i % every == 0
    ]


def bar_chart(
    chart_id: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series]
) -> Markup:
    """Grouped bars, one group per label, one bar per series (at most two: solid, hatched)."""
    series = list(series)[: len(COLOURS)]
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    top = nice_max(max((v for s in series for v in s.values), default=0))
    count = max(len(labels), 1)
    group = plot_w / count
    gap = group * 0.2
    bar = (group - gap) / max(len(series), 1)
    base = TOP + plot_h
    hatch = f"{chart_id}-hatch"
    body = [
        "<defs>"
        f'<pattern id="{_e(hatch)}" patternUnits="userSpaceOnUse" width="4" height="4" '
        'patternTransform="rotate(45)">'
        f'<rect width="4" height="4" fill="#fff"/>'
        f'<line x1="0" y1="0" x2="0" y2="4" stroke="{COLOURS[1]}" stroke-width="3"/>'
        "</pattern></defs>"
    ]
    body += _axes(top, "", plot_h)
    fills = [COLOURS[0], f"url(#{hatch})"]
    for s_index, s in enumerate(series):
        for i, value in enumerate(s.values[: len(labels)]):
            h = plot_h * value / top
            x = LEFT + i * group + gap / 2 + s_index * bar
            body.append(
                f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{fills[s_index]}" stroke="{COLOURS[s_index]}" stroke-width="0.5">'
                f"<title>{_e(s.name)}, {_e(labels[i])}: {value}</title></rect>"
            )
    body += _x_labels(labels, lambda i: LEFT + i * group + group / 2, base)
    # Legend: a swatch of each pattern and its name.
    x = LEFT
    for s_index, s in enumerate(series):
        body.append(
            f'<rect x="{x}" y="8" width="14" height="12" fill="{fills[s_index]}" '
            f'stroke="{COLOURS[s_index]}" stroke-width="1"/>'
            f'<text x="{x + 18}" y="18" fill="{INK}">{_e(s.name)}</text>'
        )
        x += 24 + int(len(s.name) * FONT * 0.6)
    return _frame(chart_id, title, desc, body)


def line_chart(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[int | None],
    *,
    unit: str = "%",
    top: int = 100,
    name: str = "",
) -> Markup:
    """One line with a marker and its value at every point; a gap where a value is None
    (nothing to measure), so "none" never reads as zero."""
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    count = max(len(labels), 1)
    step = plot_w / count
    base = TOP + plot_h

    def centre(i: int) -> float:
        return LEFT + i * step + step / 2

    def y_of(value: int) -> float:
        return base - plot_h * min(value, top) / top

    body = _axes(top, unit, plot_h)
    runs: list[list[str]] = [[]]
    for i, value in enumerate(values[: len(labels)]):
        if value is None:
            runs.append([])
            continue
        runs[-1].append(f"{centre(i):.1f},{y_of(value):.1f}")
    for run in runs:
        if len(run) > 1:
            body.append(
                f'<polyline points="{" ".join(run)}" fill="none" stroke="{COLOURS[0]}" '
                'stroke-width="2"/>'
            )
    every = _label_every(len(labels))
    for i, value in enumerate(values[: len(labels)]):
        if value is None:
            continue
        x, y = centre(i), y_of(value)
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{COLOURS[0]}">'
            f"<title>{_e(labels[i])}: {value}{_e(unit)}</title></circle>"
        )
        if i % every == 0:
            anchor = "start" if x - LEFT < 12 else "middle"  # clear of the axis's numbers
            body.append(
                f'<text x="{x:.1f}" y="{y - 6:.1f}" text-anchor="{anchor}" fill="{INK}">'
                f"{value}{_e(unit)}</text>"
            )
    body += _x_labels(labels, centre, base)
    if name:
        body.append(
            f'<circle cx="{LEFT + 6}" cy="14" r="3" fill="{COLOURS[0]}"/>'
            f'<line x1="{LEFT - 2}" y1="14" x2="{LEFT + 14}" y2="14" stroke="{COLOURS[0]}" '
            'stroke-width="2"/>'
            f'<text x="{LEFT + 20}" y="18" fill="{INK}">{_e(name)}</text>'
        )
    return _frame(chart_id, title, desc, body)
