"""
Charts of redemption attempts, drawn on the server as SVG: no JavaScript, no CDN, readable in a screenshot.

``outcomes_per_day_svg`` stacks each day's attempts by outcome; ``top_counts_svg`` draws the most frequent reasons
or error codes as horizontal bars. Both take the plain data ``selectors.attempt_summary`` returns and give markup
that is safe to put in a template: every label is escaped.
"""
import math
from datetime import date, timedelta

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from .attempt_display import OUTCOME_COLORS, outcome_color, outcome_label

MAX_DAYS = 120
# The legend's grid: outcome labels are short ("upstream down (1234)" fits a quarter of the plot's width).
LEGEND_COLUMNS = 4
LEGEND_ROW_PX = 20
FONT = "font-family:-apple-system,'Segoe UI',system-ui,Roboto,'Helvetica Neue',Arial,sans-serif"


def nice_step(largest: int, ticks: int = 5) -> int:
    """A round step (1, 2 or 5 x 10^k, at least 1) that covers ``largest`` in at most ``ticks`` steps."""
    rough = max(1, math.ceil(largest / ticks))
    power = 10 ** int(math.floor(math.log10(rough)))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= rough)


def day_range(groups: list[dict], first: date | None = None, last: date | None = None) -> list[date]:
    """Every day from ``first`` (or the first day with attempts) to ``last`` (or the last), at most MAX_DAYS."""
    days = sorted(date.fromisoformat(group["group"]) for group in groups)
    first = first or (days[0] if days else None)
    last = last or (days[-1] if days else None)
    if first is None or last is None or last < first:
        return []
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def outcome_order(summary: dict) -> list[str]:
    """Outcomes bottom-up in the stack: known ones in a fixed order, then any others seen, by name."""
    seen = set(summary.get("by_outcome") or {})
    known = [outcome for outcome in OUTCOME_COLORS if outcome in seen]
    return known + sorted(seen - set(known))


def outcomes_per_day_svg(summary: dict, *, first: date | None = None, last: date | None = None,
                         width: int = 1000, height: int = 300) -> str:
    """Stacked bars of attempts per day by outcome, from a ``group_by="day"`` summary; a legend under the axis."""
    days = day_range(summary["groups"], first, last)
    if not days:
        return mark_safe('<p class="chart-empty">No attempts match these filters.</p>')  # noqa: S308 (a constant)
    by_day = {group["group"]: group for group in summary["groups"]}
    outcomes = outcome_order(summary)
    left, right, top, bottom = 56, 12, 14, 52
    plot_w, plot_h = width - left - right, height - top - bottom
    largest = max((by_day.get(day.isoformat(), {}).get("total", 0) for day in days), default=1)
    step = nice_step(largest)
    y_max = step * max(1, math.ceil(largest / step))
    band = plot_w / len(days)
    bar_w = max(1.0, band * 0.72)
    parts = []

    # Horizontal grid and y labels every round step.
    for tick in range(0, y_max + 1, step):
        y = top + plot_h - plot_h * tick / y_max
        parts.append(format_html('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#d6dadd" stroke-width="1"/>',
                                 left, left + plot_w, f"{y:.1f}", f"{y:.1f}"))
        parts.append(format_html('<text x="{}" y="{}" text-anchor="end" font-size="12" fill="#333">{}</text>',
                                 left - 8, f"{y + 4:.1f}", tick))
    parts.append(format_html(
        '<text x="14" y="{}" font-size="12" fill="#333" transform="rotate(-90 14 {})" text-anchor="middle">'
        'attempts</text>', top + plot_h / 2, top + plot_h / 2))

    # One stacked bar per day, each segment with a tooltip.
    # Day labels evenly spaced and anchored on the last day, so the newest bar is always labelled.
    label_every = max(1, math.ceil(len(days) / 15))
    for index, day in enumerate(days):
        x = left + band * index + (band - bar_w) / 2
        y = top + plot_h
        counts = by_day.get(day.isoformat(), {}).get("by_outcome", {})
        for outcome in outcomes:
            n = counts.get(outcome, 0)
            if not n:
                continue
            h = plot_h * n / y_max
            y -= h
            parts.append(format_html(
                '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {} {}</title></rect>',
                f"{x:.1f}", f"{y:.1f}", f"{bar_w:.1f}", f"{h:.1f}", outcome_color(outcome), day.isoformat(), n,
                outcome_label(outcome)))
        if (len(days) - 1 - index) % label_every == 0:
            parts.append(format_html(
                '<text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#333">{}</text>',
                f"{x + bar_w / 2:.1f}", top + plot_h + 18, day.strftime("%b %d")))
    parts.append(format_html('<line x1="{}" x2="{}" y1="{}" y2="{}" stroke="#333" stroke-width="1"/>',
                             left, left + plot_w, top + plot_h, top + plot_h))

    # Legend under the axis: a swatch and the total of each outcome, in stack order, in a grid of equal slots.
    slot = plot_w / LEGEND_COLUMNS
    for index, outcome in enumerate(outcomes):
        row, column = divmod(index, LEGEND_COLUMNS)
        x, y = left + slot * column, top + plot_h + 44 + row * LEGEND_ROW_PX
        text = f"{outcome_label(outcome)} ({summary['by_outcome'].get(outcome, 0)})"
        parts.append(format_html('<rect x="{}" y="{}" width="12" height="12" fill="{}"/>', f"{x:.0f}", y - 10,
                                 outcome_color(outcome)))
        parts.append(format_html('<text x="{}" y="{}" font-size="13" fill="#222">{}</text>', f"{x + 17:.0f}", y,
                                 text))
    height += (math.ceil(len(outcomes) / LEGEND_COLUMNS) - 1) * LEGEND_ROW_PX
    title = f"Attempts per day by outcome, {days[0].isoformat()} to {days[-1].isoformat()}"
    return format_html(
        '<svg class="chart chart-outcomes-per-day" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" '
        'height="{}" xmlns="http://www.w3.org/2000/svg" style="{}"><title>{}</title>{}</svg>',
        title, width, height, width, height, FONT, title, mark_safe("".join(parts)))  # noqa: S308 (parts are escaped)


def top_counts_svg(counts: dict, *, title: str, color: str, limit: int = 10, width: int = 490,
                   css_class: str = "chart-top") -> str:
    """The ``limit`` largest counts as horizontal bars, label on the left and count on the right."""
    items = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]
    if not items:
        return format_html('<p class="chart-empty">{}: none.</p>', title)
    label_w, count_w, row_h, top = 250, 48, 24, 8
    bar_max = width - label_w - count_w
    largest = items[0][1]
    height = top + row_h * len(items) + 4
    rows = []
    for index, (name, n) in enumerate(items):
        y = top + row_h * index
        w = max(2.0, bar_max * n / largest)
        rows.append(format_html(
            '<text x="{}" y="{}" text-anchor="end" font-size="13" fill="#222">{}</text>'
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
            '<text x="{}" y="{}" font-size="13" fill="#222">{}</text>',
            label_w - 8, y + 16, shorten(name, 34), label_w, y + 4, f"{w:.1f}", row_h - 8, color, name, n,
            f"{label_w + w + 6:.1f}", y + 16, n))
    return format_html(
        '<svg class="chart {}" role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}" '
        'xmlns="http://www.w3.org/2000/svg" style="{}"><title>{}</title>{}</svg>',
        css_class, title, width, height, width, height, FONT, title, format_html_join("", "{}", ((r,) for r in rows)))


def shorten(text: str, length: int) -> str:
    text = str(text)
    return text if len(text) <= length else text[: length - 1] + "\u2026"

