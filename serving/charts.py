"""Small charts as inline SVG, rendered on the server (no chart library, nothing downloaded).

Each function returns markup safe to put in a template; every label is escaped. Colours come from CSS
classes (``serving/static/doudi.css``), so charts follow the page's palette and print well.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

TIER_CLASS = {"red": "t-red", "orange": "t-orange", "yellow": "t-yellow", "none": "t-none"}


def _svg(width: int, height: int, body: list[str], title: str) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        + "".join(body)
        + "</svg>"
    )


def _divisions(top: float) -> int:
    """Grid divisions giving round ticks: 4 for a top of 2 x 10^k (0.5 steps), else 5."""
    mantissa = top / 10 ** math.floor(math.log10(top))
    return 4 if math.isclose(mantissa, 2.0) else 5


def _anchor(i: int, n: int) -> str:
    """Keep the first and last x labels inside the chart."""
    if n > 1 and i == 0:
        return "start"
    if n > 1 and i == n - 1:
        return "end"
    return "middle"


def _text_width(text: str, size: float = 13.0) -> float:
    """Rough rendered width of a label: CJK characters are about one em wide, others about half."""
    return sum(size if ord(ch) > 0x2E80 else size * 0.56 for ch in text)


def _nice_max(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 x 10^k)."""
    if value <= 0:
        return 1.0
    power = 10 ** len(str(int(value))) / 10 if value >= 1 else 0.1
    while power * 10 < value:
        power *= 10
    while power > value * 10:
        power /= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return step * power
    return 10 * power


def line_chart(
    labels: Sequence[str],
    values: Sequence[float | None],
    *,
    title: str,
    point_classes: Sequence[str] | None = None,
    guides: Sequence[tuple[float, str, str]] = (),
    percent: bool = True,
    y_max: float | None = None,
    width: int = 560,
    height: int = 220,
) -> Markup:
    """A line over labelled points (missing values leave a gap).

    Args:
        labels: x-axis labels, one per point.
        values: y values.
        title: accessible title.
        point_classes: CSS class per point (e.g. the tier colour).
        guides: horizontal reference lines ``(y, css class, label)``, e.g. tier thresholds.
        percent: format the y axis as percentages.
        y_max: top of the y axis (default: a round number above the data and the guides).
    """
    left, right, top, bottom = 48, 84 if guides else 24, 24, 40
    inner_w, inner_h = width - left - right, height - top - bottom
    present = [v for v in values if v is not None]
    top_value = y_max or _nice_max(max([*present, *(g[0] for g in guides), 0.0001]) * 1.1)
    n = len(values)

    def x(i: int) -> float:
        return left + (inner_w / 2 if n == 1 else inner_w * i / (n - 1))

    def y(v: float) -> float:
        return top + inner_h * (1 - min(max(v, 0.0), top_value) / top_value)

    def fmt(v: float) -> str:
        return f"{v:.0%}" if percent else f"{v:,.0f}"

    body = [f'<rect class="plot" x="{left}" y="{top}" width="{inner_w}" height="{inner_h}"/>']
    divisions = _divisions(top_value)
    for k in range(divisions + 1):
        tick = top_value * k / divisions
        body.append(
            f'<line class="grid" x1="{left}" x2="{left + inner_w}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{fmt(tick)}</text>'
        )
    for value, css, label in guides:
        body.append(
            f'<line class="guide {escape(css)}" x1="{left}" x2="{left + inner_w}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text class="guide-label {escape(css)}" x="{left + inner_w + 6}" '
            f'y="{y(value) + 4:.1f}" text-anchor="start">{escape(label)}</text>'
        )
    segment: list[str] = []
    for i, v in enumerate(values):
        if v is None:
            if len(segment) > 1:
                body.append(f'<polyline class="line" points="{" ".join(segment)}"/>')
            segment = []
            continue
        segment.append(f"{x(i):.1f},{y(v):.1f}")
    if len(segment) > 1:
        body.append(f'<polyline class="line" points="{" ".join(segment)}"/>')
    step = max(1, n // 8)
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        if v is not None:
            css = escape(point_classes[i]) if point_classes else ""
            body.append(
                f'<circle class="point {css}" cx="{x(i):.1f}" cy="{y(v):.1f}" r="5">'
                f"<title>{escape(label)}: {fmt(v)}</title></circle>"
            )
            if n <= 12:
                body.append(
                    f'<text class="value" x="{x(i):.1f}" y="{y(v) - 9:.1f}" '
                    f'text-anchor="middle">{fmt(v)}</text>'
                )
        if i % step == 0 or i == n - 1:
            body.append(
                f'<text class="axis" x="{x(i):.1f}" y="{height - bottom + 18}" '
                f'text-anchor="{_anchor(i, n)}">{escape(label)}</text>'
            )
    return _svg(width, height, body, title)


def diverging_bars(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    up_label: str,
    down_label: str,
    width: int = 560,
    row: int = 30,
) -> Markup:
    """Horizontal bars around zero: right (class ``up``) raises risk, left (``down``) lowers it.

    Args:
        items: ``(label, value)`` in display order.
        title: accessible title.
        up_label, down_label: legends of the two directions.
    """
    label_w, pad = min(220, max(80, max((_text_width(label) for label, _ in items), default=0) + 12)), 12
    height = row * len(items) + 44
    half = (width - label_w - 2 * pad) / 2
    zero = label_w + pad + half
    scale = max([abs(v) for _, v in items] + [1e-9])
    body = [
        f'<text class="legend down" x="{zero - 8}" y="16" text-anchor="end">◀ {escape(down_label)}</text>',
        f'<text class="legend up" x="{zero + 8}" y="16">{escape(up_label)} ▶</text>',
    ]
    for i, (label, value) in enumerate(items):
        y0 = 28 + i * row
        length = half * abs(value) / scale
        css = "up" if value > 0 else "down"
        x0 = zero if value > 0 else zero - length
        body.append(
            f'<text class="bar-label" x="{label_w}" y="{y0 + row / 2 + 4:.1f}" '
            f'text-anchor="end">{escape(label)}</text>'
        )
        body.append(
            f'<rect class="bar {css}" x="{x0:.1f}" y="{y0 + 5}" width="{max(length, 1):.1f}" '
            f'height="{row - 10}"><title>{escape(label)}: {value:+.3f}</title></rect>'
        )
    body.append(f'<line class="zero" x1="{zero:.1f}" x2="{zero:.1f}" y1="22" y2="{height - 8}"/>')
    return _svg(width, height, body, title)


def column_chart(
    labels: Sequence[str],
    values: Sequence[float],
    *,
    title: str,
    width: int = 560,
    height: int = 220,
    css: str = "col",
) -> Markup:
    """Vertical columns with their value on top (counts per scoring run)."""
    left, right, top, bottom = 48, 16, 18, 40
    inner_w, inner_h = width - left - right, height - top - bottom
    top_value = _nice_max(max([*values, 5]))
    n = max(len(values), 1)
    slot = inner_w / n
    body = [f'<rect class="plot" x="{left}" y="{top}" width="{inner_w}" height="{inner_h}"/>']
    divisions = _divisions(top_value)
    for k in range(divisions + 1):
        v = top_value * k / divisions
        yy = top + inner_h * (1 - v / top_value)
        body.append(
            f'<line class="grid" x1="{left}" x2="{left + inner_w}" y1="{yy:.1f}" y2="{yy:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end">{v:,.0f}</text>'
        )
    step = max(1, n // 8)
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        h = inner_h * value / top_value
        x0 = left + i * slot + slot * 0.2
        body.append(
            f'<rect class="{escape(css)}" x="{x0:.1f}" y="{top + inner_h - h:.1f}" '
            f'width="{slot * 0.6:.1f}" height="{h:.1f}"><title>{escape(label)}: {value:,.0f}</title></rect>'
        )
        if n <= 12:
            body.append(
                f'<text class="value" x="{x0 + slot * 0.3:.1f}" y="{top + inner_h - h - 4:.1f}" '
                f'text-anchor="middle">{value:,.0f}</text>'
            )
        if i % step == 0 or i == n - 1:
            body.append(
                f'<text class="axis" x="{x0 + slot * 0.3:.1f}" y="{height - bottom + 18}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    return _svg(width, height, body, title)
