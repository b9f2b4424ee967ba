"""matplotlib drawing primitives shared by the run and plan charts, rendered to PNG bytes.

matplotlib is imported on first use (the `report` extra), through its object-oriented API with the
Agg canvas: no pyplot, no display, no global state, so reports can be drawn from any process.
Estimates among measured values (CPU energy, say) are hatched, with a legend entry saying so.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import MissingDependency, install_hint

DPI = 110
WIDTH_IN = 9.5
ESTIMATED_HATCH = "///"


def _figure_class():
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency("reports draw their charts with matplotlib, which is not installed: "
                                f"{install_hint('report')}") from None
    return Figure


def require() -> None:
    """Fail early (MissingDependency) when matplotlib is absent."""
    _figure_class()


def figure(ncols: int = 1, height: float = 3.4, nrows: int = 1, sharey: bool = False,
           height_ratios: Sequence[float] | None = None):
    """A figure and its axes (a flat list), light grid, constrained layout."""
    fig = _figure_class()(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=sharey,
                        gridspec_kw={"height_ratios": height_ratios} if height_ratios else None).ravel().tolist()
    for ax in axes:
        ax.grid(True, alpha=0.3)
        ax.set_axisbelow(True)
    return fig, axes


def rows_height(n: int, per_row: float = 0.3, base: float = 1.3) -> float:
    """Figure height in inches for a horizontal chart of n rows."""
    return max(2.4, base + per_row * n)


def png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def number(v: float, digits: int = 3) -> str:
    """A figure to read: `digits` significant digits, and whole numbers with thousands separated from where
    those digits would need an exponent (499, not 5e+02; 1,000, not 1e+03)."""
    return f"{v:,.0f}" if abs(v) >= 10 ** (digits - 1) else f"{v:.{digits}g}"


def log_if_spread(ax, values: Sequence[float], axis: str = "x", ratio: float = 10.0) -> None:
    """A log scale when positive values span more than `ratio`, so small cells stay readable."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    pos = [v for v in values if v and v > 0]
    if not pos or max(pos) / min(pos) <= ratio:
        return
    target = ax.xaxis if axis == "x" else ax.yaxis
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    target.set_minor_formatter(NullFormatter())


def legend(ax, series: bool = True, hatched: bool = False) -> None:
    """A legend above the axes (never over the data): the series drawn, and what hatching means."""
    from matplotlib.patches import Patch

    handles = ax.get_legend_handles_labels()[0] if series else []
    if hatched:
        handles.append(Patch(facecolor="white", edgecolor="0.3", hatch=ESTIMATED_HATCH, label="hatched: estimated"))
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.01), frameon=False)


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: its row group (category), its series (colour), value (None: drawn as `missing`,
    'n/a' or 'failed'), whether it is an estimate (hatched), and an optional upper whisker (p90, say)."""
    category: str
    series: str
    value: float | None
    estimated: bool = False
    upper: float | None = None
    missing: str = "n/a"


CATEGORY_GAP = 0.5


def hbars_height(bars: Sequence[Bar], per_row: float = 0.28) -> float:
    return rows_height(len(bars) + CATEGORY_GAP * len({b.category for b in bars}), per_row)


def hbars(ax, bars: Sequence[Bar], xlabel: str, series_legend: bool = True) -> None:
    """Horizontal bars clustered by category, in the order given; each value printed at its end
    (after its whisker); a colour per series, with a legend when there are several."""
    from matplotlib.ticker import MaxNLocator

    cats = list(dict.fromkeys(b.category for b in bars))
    series = list(dict.fromkeys(b.series for b in bars))
    ticks, y, labelled = [], 0.0, set()
    for cat in cats:
        group = [b for b in bars if b.category == cat]
        ticks.append(y + (len(group) - 1) / 2)
        for b in group:
            if b.value is None:
                ax.text(0, y, f" {b.missing}", va="center", fontsize=7, color="0.4")
            else:
                ax.barh(y, b.value, height=0.85, color=f"C{series.index(b.series) % 10}", edgecolor="0.25",
                        linewidth=0.4, hatch=ESTIMATED_HATCH if b.estimated else None,
                        label=None if b.series in labelled else b.series)
                labelled.add(b.series)
                if b.upper is not None and b.upper > b.value:
                    ax.errorbar(b.value, y, xerr=[[0], [b.upper - b.value]], fmt="none", ecolor="0.2", capsize=2,
                                lw=0.8)
                ax.text(max(b.value, b.upper or b.value), y, f" {number(b.value)}", va="center", fontsize=7)
            y += 1
        y += CATEGORY_GAP
    ax.set_yticks(ticks, cats, fontsize=7)
    ax.set_ylim(y - CATEGORY_GAP - 0.5, -0.5)  # first category on top; idempotent for shared axes
    ax.set_xlabel(xlabel)
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.margins(x=0.18)
    legend(ax, series=series_legend and len(series) > 1, hatched=any(b.estimated for b in bars))


def hbox(ax, data: Sequence[Sequence[float]], labels: Sequence[str], xlabel: str) -> None:
    """Horizontal box plots with every sample drawn over them (runs often have few samples)."""
    import matplotlib
    import numpy as np

    orient = {"orientation": "horizontal"} if tuple(map(int, matplotlib.__version__.split(".")[:2])) >= (3, 10) \
        else {"vert": False}
    ax.boxplot([list(d) for d in data], **orient, widths=0.5, showfliers=False, medianprops={"color": "C1"})
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, 1):
        ax.scatter(d, i + rng.uniform(-0.15, 0.15, len(d)), s=6, color="C0", alpha=0.5, zorder=3)
    ax.set_yticks(range(1, len(labels) + 1), labels, fontsize=7)
    ax.set_ylim(len(labels) + 0.5, 0.5)
    ax.set_xlabel(xlabel)
