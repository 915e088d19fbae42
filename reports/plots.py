"""Plots as base64 PNG (matplotlib, Agg, no pyplot state): loss curves, ms/iter, tokens/s, MFU.

Long curves are binned to at most MAX_POINTS points per run so 50 runs x 2000 iters draw in well under
a second.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench.metrics import mfu_is_possible
from reports import fmt
from reports.load import Results, wall_clock
from reports.profile_text import LABELS
from reports.roofline import device_rooflines

MAX_POINTS = 300
LEGEND_MAX = 16
RUNS_MAX = 40  # per-run plots (loss curves, one row per run) draw at most this many: more is unreadable
DPI = 80


@dataclass
class Plot:
    name: str
    title: str
    png_base64: str
    caption: str


def _figure(width: float, height: float, left_in: float = 0.8, bottom_in: float = 0.7, top_in: float = 0.45):
    """A figure with fixed margins in inches (constrained layout costs a second draw)."""
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(
        left=left_in / width, right=1 - 0.25 / width, bottom=bottom_in / height, top=1 - top_in / height
    )
    return fig


def _label_margin(labels: list[str]) -> float:
    """Inches a column of 8-pt y tick labels needs."""
    return 0.3 + 0.065 * max((len(s) for s in labels), default=4)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _colors(n: int) -> list:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def downsample(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Mean of y (and x) over equal bins, so a curve has at most max_points points."""
    n = len(x)
    if n <= max_points:
        return x, y
    edges = np.linspace(0, n, max_points + 1).astype(int)
    counts = np.diff(edges)
    xs = np.add.reduceat(x, edges[:-1]) / counts
    ys = np.add.reduceat(y, edges[:-1]) / counts
    return xs, ys


def text(label: object) -> str:
    """A label drawn as written: '$' escaped, so matplotlib never reads a host's "$x^2$" as mathtext."""
    return str(label).replace("$", r"\$")


def _labels(results: Results, keys: list[str]) -> list[str]:
    return [text(results.label(k)) for k in keys]


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def loss_curves(results: Results, keys: list[str]) -> Plot:
    rows = math.ceil(min(len(keys), LEGEND_MAX) / 3) if len(keys) <= LEGEND_MAX else 1
    fig = _figure(11, 7.5 + 0.2 * rows, bottom_in=0.8 + 0.2 * rows)
    axes = fig.subplots(2, 2, sharey="row", gridspec_kw={"hspace": 0.3, "wspace": 0.08})
    colors = _colors(len(keys))
    # one LineCollection per axes: 50 runs draw as fast as one
    lines: dict[tuple[int, int], tuple[list, list]] = {(i, j): ([], []) for i in range(2) for j in range(2)}
    points: dict[int, tuple[list, list, list]] = {0: ([], [], []), 1: ([], [], [])}
    for key, color in zip(keys, colors, strict=True):
        s = results.steps_of(key).sort_values("iter")
        e = results.evals_of(key)
        if len(s):
            step_t, eval_t = wall_clock(s, e)
            loss = s["loss"].to_numpy(float)
            for j, x in enumerate((s["iter"].to_numpy(float), step_t)):
                xs, ys = downsample(*_finite(x, loss))
                lines[0, j][0].append(np.column_stack([xs, ys]))
                lines[0, j][1].append(color)
        else:
            eval_t = np.array([])
        val_e = e[e["split"] == "val"].sort_values("iter") if len(e) else e
        if len(val_e):
            order = e.groupby("iter")["ms"].sum(min_count=1).index.to_numpy()  # wall_clock's eval order
            val_it = val_e["iter"].to_numpy(float)
            val_loss = val_e["loss"].to_numpy(float)
            val_t = eval_t[np.searchsorted(order, val_it)] if len(eval_t) else val_it * np.nan
            for j, x in enumerate((val_it, val_t)):
                x, val_y = _finite(x, val_loss)
                lines[1, j][0].append(np.column_stack([x, val_y]))
                lines[1, j][1].append(color)
                points[j][0].extend(x)
                points[j][1].extend(val_y)
                points[j][2].extend([color] * len(x))
    for (i, j), (segs, cols) in lines.items():
        if segs:
            axes[i, j].add_collection(LineCollection(segs, colors=cols, linewidths=1.1 if i else 1.0))
            axes[i, j].autoscale_view()
    for j, (xs, ys, cols) in points.items():
        if xs:
            axes[1, j].scatter(xs, ys, c=cols, s=9, zorder=3)
    axes[0, 0].set_title("train loss (per step, binned) vs iteration")
    axes[0, 1].set_title("train loss vs wall-clock seconds (steps + evals)")
    axes[1, 0].set_title("val loss (evals) vs iteration")
    axes[1, 1].set_title("val loss vs wall-clock seconds")
    axes[1, 0].set_xlabel("iteration")
    axes[1, 1].set_xlabel("seconds")
    for ax in axes.flat:
        ax.grid(alpha=0.3)
    handles = [
        Line2D([], [], color=c, label=lbl) for c, lbl in zip(colors, _labels(results, keys), strict=True)
    ]
    _legend(fig, handles)
    return Plot(
        "loss", "Loss curves", _png(fig),
        "Train and val loss of every run against iteration and against wall-clock time: the right-hand "
        "plots show what each device reaches in the same time.",
    )  # fmt: skip


def _legend(fig, handles: list) -> None:
    n = len(handles)
    if n == 0:
        return
    if n <= LEGEND_MAX:
        fig.legend(handles=handles, loc="lower center", ncol=min(n, 3), fontsize=8, frameon=False)
    else:
        fig.text(0.5, 0.01, f"{n} runs: legend omitted; colours follow the summary table's order", ha="center",
                 fontsize=8)  # fmt: skip


def per_run(results: Results, keys: list[str]) -> Plot:
    """One row per run: ms/iter distribution (left) and MFU bars (right), sharing the run labels."""
    n = len(keys)
    labels = _labels(results, keys)
    fig = _figure(12, 1.6 + 0.3 * (max(n, 2) + 2), left_in=_label_margin(labels), top_in=0.5)
    ax_ms, ax_mfu = fig.subplots(1, 2, sharey=True, gridspec_kw={"wspace": 0.06})
    y = np.arange(n)
    _ms_panel(results, keys, ax_ms, y)
    _mfu_panel(results, keys, ax_mfu, y)
    ax_ms.set_yticks(y, labels, fontsize=8)
    ax_ms.set_ylim(n + 1.6, -0.6)  # free rows at the bottom for the legends
    return Plot(
        "runs", "ms/iter and MFU per run", _png(fig),
        "Left: each box is the run's timed steps (p25-p75, whiskers p5-p95), the red tick its median; crosses "
        "are warm-up steps (compile, caches) and triangles a log's after-eval steps, both kept out of the "
        "medians. Right: blue is achieved FLOP/s over the peak of the device and dtype actually used; grey "
        "is over an A100's 312 TFLOP/s, as nanoGPT prints on every device.",
    )  # fmt: skip


def _ms_panel(results: Results, keys: list[str], ax, y: np.ndarray) -> None:
    n = len(keys)
    steps = results.steps[results.steps["key"].isin(keys)]
    timed = steps[steps["phase"] == "timed"]
    # p5, p25, p50, p75, p95 of each run's timed steps, in one pass
    stats = (
        timed.groupby("key")["ms"]
        .quantile([0.05, 0.25, 0.5, 0.75, 0.95])
        .unstack()
        .reindex(keys)
        .to_numpy(float)
        if len(timed)
        else np.full((n, 5), np.nan)
    )
    other = steps[steps["phase"] != "timed"]
    row = {k: i for i, k in enumerate(keys)}
    apart_x = other["ms"].to_numpy(float)
    apart_y = other["key"].map(row).to_numpy(float)
    apart_after = (other["phase"] == "after_eval").to_numpy()
    # boxes (p25-p75), whiskers (p5-p95) and medians: three artists for any number of runs
    ax.barh(
        y,
        stats[:, 3] - stats[:, 1],
        left=stats[:, 1],
        height=0.55,
        color="#cfe0f5",
        edgecolor="#3c6db0",
        lw=0.8,
    )
    ax.add_collection(LineCollection([[(a, yi), (b, yi)] for yi, a, b in zip(y, stats[:, 0], stats[:, 4], strict=True)],
                                     colors="#3c6db0", linewidths=0.8, zorder=1))  # fmt: skip
    ax.scatter(stats[:, 2], y, marker="|", s=120, color="C3", zorder=3, label="median (timed steps)")
    if len(apart_x):
        ax.scatter(apart_x[~apart_after], apart_y[~apart_after] + 0.3, marker="x", s=14, color="C1",
                   label="warm-up steps (not in the box)")  # fmt: skip
        if apart_after.any():
            ax.scatter(apart_x[apart_after], apart_y[apart_after] + 0.3, marker="^", s=16, color="C4",
                       label="after-eval steps (nanoGPT timer)")  # fmt: skip
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("ms per train step (log scale)")
    ax.set_title("ms/iter: timed steps, warm-up shown apart")
    ax.grid(alpha=0.3, axis="x")


def _mfu_panel(results: Results, keys: list[str], ax, y: np.ndarray) -> None:
    n = len(keys)
    r = results.runs.loc[keys]
    own = r["mfu"].to_numpy(dtype=float) * 100
    a100 = r["mfu_vs_a100"].to_numpy(dtype=float) * 100
    impossible = np.array([fmt.is_num(v) and not mfu_is_possible(v / 100) for v in own], dtype=bool)
    shown = np.where(impossible, np.nan, own)  # an impossible MFU is never drawn as a result
    positive = np.concatenate([shown[shown > 0], a100[a100 > 0]])
    lo = float(positive.min()) / 2 if len(positive) else 1e-3
    ax.barh(y - 0.2, np.nan_to_num(shown), left=0, height=0.4, color="C0", label="vs own peak")
    ax.barh(
        y + 0.2, np.nan_to_num(a100), left=0, height=0.4, color="C7", label="vs A100 312 TFLOP/s (nanoGPT)"
    )
    ax.set_xscale("log")
    ax.set_xlim(left=lo, right=max(100.0, float(positive.max()) * 1.5 if len(positive) else 100.0))
    for yi, v, va, bad in zip(y, own, a100, impossible, strict=True):
        if bad:
            ax.text(lo * 1.15, yi - 0.2, f"impossible ({fmt.sig(v)}%): wrong peak or config", va="center",
                    fontsize=7, color="C3")  # fmt: skip
        elif not fmt.is_num(v):
            ax.text(lo * 1.15, yi - 0.2, "own peak unknown", va="center", fontsize=7)
        elif n <= LEGEND_MAX:
            ax.text(max(float(v), lo) * 1.15, yi - 0.2, f"{fmt.sig(v)}%", va="center", fontsize=7)
        if fmt.is_num(va) and n <= LEGEND_MAX:
            ax.text(
                max(float(va), lo) * 1.15, yi + 0.2, f"{fmt.sig(va)}%", va="center", fontsize=7, color="0.35"
            )
    ax.set_xlabel("% of peak FLOP/s (log scale)")
    ax.set_title("MFU: against own peak, and as nanoGPT prints it")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, axis="x")


def tokens_vs_batch(results: Results, keys: list[str]) -> Plot:
    fig = _figure(11, 4.5, left_in=0.9)
    ax = fig.subplots()
    r = results.runs.loc[keys]
    r = r[r["tokens_per_s"].notna()].assign(threads=r["threads"].fillna(-1))
    series = list(r.groupby(["host", "device", "dtype", "compile", "threads"], sort=False, dropna=False))
    for (host, device, dtype, comp, th), g in series:
        g = g.groupby("batch_size")["tokens_per_s"].max().sort_index()
        label = " ".join(
            text(x) for x in ((str(host) + ":") if results.multi_host else "", device, dtype,
                        "" if comp in (None, "off") else f"compile={comp}", "" if th == -1 else f"t{int(th)}") if x
        )  # fmt: skip
        ax.plot(g.index, g.values, marker="o", label=label)
    ax.set_xscale("log", base=2)
    batches = sorted({int(b) for b in r["batch_size"].dropna()})
    if batches:
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.minorticks_off()
    values = r["tokens_per_s"].to_numpy(dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) and values.max() > 10 * values.min():
        ax.set_yscale("log")
        ax.set_ylabel("tokens/s (log)")
    else:  # a narrow range reads better on a linear axis from zero
        ax.set_ylim(0, float(values.max()) * 1.15 if len(values) else 1)
        ax.set_ylabel("tokens/s")
    ax.set_xlabel("batch size")
    ax.set_title("throughput vs batch size, per device")
    ax.grid(alpha=0.3, which="both")
    if 0 < len(series) <= LEGEND_MAX:
        ax.legend(fontsize=8)
    return Plot(
        "tokens", "tokens/s vs batch size", _png(fig),
        "A line that rises steeply with batch means fixed per-step costs (launches, Python) dominate at small batch.",
    )  # fmt: skip


PROFILE_COLORS = {
    "matmul": "#1f77b4", "attention": "#9467bd", "elementwise_norm": "#2ca02c", "optimizer": "#ff7f0e",
    "data": "#8c564b", "other": "#7f7f7f",
}  # fmt: skip
PROFILE_LABELS = {**LABELS, "other": "other (Python, launches, idle)"}


def step_breakdown(results: Results, keys: list[str]) -> Plot | None:
    """One 100% stacked bar per profiled run: where a train step's time goes."""
    keys = [k for k in keys if k in results.profiles]
    if not keys:
        return None
    labels = _labels(results, keys)
    fig = _figure(11, 1.5 + 0.32 * len(keys), left_in=_label_margin(labels), bottom_in=1.15)
    ax = fig.subplots()
    y = np.arange(len(keys))[::-1]
    left = np.zeros(len(keys))
    for cat, color in PROFILE_COLORS.items():
        frac = np.array([float(results.profiles[k]["mean"]["fraction"].get(cat, 0.0)) * 100 for k in keys])
        ax.barh(y, frac, left=left, color=color, height=0.6, label=PROFILE_LABELS.get(cat, cat))
        for yi, lo, f in zip(y, left, frac, strict=True):
            if f >= 7:
                ax.text(lo + f / 2, yi, f"{f:.0f}%", ha="center", va="center", fontsize=7, color="white")
        left += frac
    for yi, k in zip(y, keys, strict=True):
        m = results.profiles[k]["mean"]
        note = f" {fmt.ms(m['step_ms'])} ms"
        if m.get("kernel_launches_per_step"):
            note += f", {m['kernel_launches_per_step']:.0f} kernels, {m.get('mean_gap_us') or 0:.1f} us gaps"
        ax.text(min(float(left.max()), 100) + 1, yi, note, va="center", fontsize=7)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 135)  # room right of the bars for each step's ms
    ax.set_xticks(range(0, 101, 20))
    ax.set_xlabel("% of the profiled train step")
    ax.set_title("where each step's time goes (bench run --profile)")
    fig.legend(loc="lower center", bbox_to_anchor=(0.5, 0.02), ncol=6, fontsize=8)  # below the axis label
    return Plot(
        "profile", "step breakdown", _png(fig),
        "Exclusive time per category over the profiled steps (self time of ops on the CPU, kernel time on CUDA); "
        "'other' is the rest of the step: Python, kernel launches, an idle device.",
    )  # fmt: skip


_RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
_ROOF_STYLE = {"measured": "-", "spec": "--", "derived": "-.", "user": ":"}


def roofline_plots(results: Results, keys: list[str]) -> list[Plot]:
    """One log-log roofline per device: the compute roofs (flat) and bandwidth roofs (slopes), measured and
    spec where both exist, and each profiled run's categories as points sized by their share of the step."""
    plots = []
    for i, dev in enumerate(device_rooflines(results, [k for k in keys if k in results.profiles])):
        fig = _figure(9, 6.2, left_in=0.95, bottom_in=1.6)
        ax = fig.subplots()
        xs = [p.intensity for p in dev.points]
        peaks = [r["value"] for r in dev.compute]
        bws = [r["value"] for r in dev.memory]
        ridges = [c / b for c in peaks for b in bws]
        lo = max(min([*xs, *ridges, 1.0]) / 4, 1e-6)
        hi = min(max([*xs, *ridges, 1.0]) * 4, 1e7)
        x = np.geomspace(lo, hi, 200)
        top = max(peaks) if peaks else max((p.flops_per_s for p in dev.points), default=1.0) * 2
        roof_handles = []
        for roof in dev.compute:
            ls = _ROOF_STYLE.get(roof["source"], ":")
            ax.axhline(roof["value"], color="0.2", lw=1.4, ls=ls)
            # labels at the left, where the slope is far below: the highest roof's above its line, others' below
            above = roof["value"] >= top
            ax.text(lo * 1.15, roof["value"] * (1.1 if above else 0.9), f"{text(roof['label'])}: {fmt.flops(roof['value'])}",
                    ha="left", va="bottom" if above else "top", fontsize=8, color="0.2")  # fmt: skip
        for roof in dev.memory:
            color = "#d98880" if roof.get("kind") == "copy" else "#b03a2e"
            ls = _ROOF_STYLE.get(roof["source"], ":")
            # each slope ends at the compute roof of its own source (measured meets measured), else the top
            cap = next((r["value"] for r in dev.compute if r["source"] == roof["source"]), top)
            ax.plot(x, np.minimum(roof["value"] * x, cap), color=color, lw=1.4, ls=ls)
            label = f"{text(roof['label'])}: {fmt.bytes_per_s(roof['value'])}"
            roof_handles.append(Line2D([], [], color=color, ls=ls, label=label))
        markers = {run: _RUN_MARKERS[j % len(_RUN_MARKERS)] for j, run in enumerate(dev.runs)}
        row = {run: j for j, run in enumerate(dev.runs)}
        for p in dev.points:
            color = PROFILE_COLORS.get(p.category, "0.5")
            ax.scatter(p.intensity, p.flops_per_s, s=30 + 1500 * p.share, color=color, marker=markers[p.run],
                       alpha=0.75, edgecolors="black", linewidths=0.6, zorder=3)  # fmt: skip
            if p.share >= 0.02:  # each run's labels at its own height, so two runs' labels do not collide
                ax.annotate(fmt.pct(p.share), (p.intensity, p.flops_per_s), xytext=(9, 4 - 9 * (row[p.run] % 3)),
                            textcoords="offset points", fontsize=7)  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ys = [p.flops_per_s for p in dev.points]
        ax.set_xlim(lo, hi)
        ax.set_ylim(min([*ys, top / 1e4]) / 4, top * 3)
        ax.set_xlabel("arithmetic intensity (FLOP per byte moved, log)")
        ax.set_ylabel("achieved FLOP/s (log)")
        ax.set_title(f"roofline: {text(dev.title)}")
        ax.grid(alpha=0.3, which="both")
        cats = sorted({p.category for p in dev.points}, key=list(PROFILE_COLORS).index)
        handles = [Line2D([], [], ls="", marker="o", color=PROFILE_COLORS[c], label=LABELS.get(c, c))
                   for c in cats]  # fmt: skip
        handles += [Line2D([], [], ls="", marker=markers[r], color="0.4", label=text(r)) for r in dev.runs]
        handles += roof_handles
        if handles:
            ax.legend(handles=handles[:LEGEND_MAX], loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=3,
                      fontsize=8, frameon=False)  # fmt: skip
        unplaced = f" Not placed: {'; '.join(dev.unplaced)}." if dev.unplaced else ""
        plots.append(
            Plot(
                f"roofline-{i}", f"roofline: {dev.title}", _png(fig),
                "Each category of each profiled run at its FLOP per byte (x) and achieved FLOP/s (y), its area "
                "its share of the step. Flat lines are compute roofs (peak FLOP/s), slopes are bandwidth roofs "
                "(bytes/s x FLOP/byte); solid is measured (a timed matmul, STREAM), dashed the spec. A point near "
                "the slope is memory-bound, near a flat roof compute-bound, far below both overhead-bound "
                "(launches, Python, dispatch). Bytes are a lower bound, so points sit at most this far right."
                + unplaced,
            )
        )  # fmt: skip
    return plots


def plotted_runs(results: Results, keys: list[str], most: int = RUNS_MAX) -> tuple[list[str], str]:
    """The runs a per-run plot draws (display order kept) and a caption note: every run up to `most`, else
    the fastest run of each device and dtype and then the fastest others by tokens/s, up to `most`."""
    if len(keys) <= most:
        return keys, ""
    r = results.runs.loc[keys]
    speed = pd.to_numeric(r["tokens_per_s"], errors="coerce").fillna(-1.0)
    ranked = r.assign(_speed=speed).sort_values("_speed", ascending=False, kind="stable")
    best = ranked.groupby(["host", "device", "dtype"], sort=False, dropna=False).head(1).index.tolist()
    chosen = list(dict.fromkeys(best[:most] + ranked.index.tolist()))[:most]
    keep = set(chosen)
    note = (
        f" Drawn: {most} of the {len(keys)} runs (the fastest of each device and dtype, then the fastest "
        "others by tokens/s); the table lists every run."
    )
    return [k for k in keys if k in keep], note


def all_plots(results: Results, keys: list[str]) -> list[Plot]:
    """Every plot for the ok runs `keys` (in display order); per-run plots draw at most RUNS_MAX runs."""
    if not keys:
        return []
    few, note = plotted_runs(results, keys)
    with np.errstate(all="ignore"):  # absurd figures from a damaged file draw badly, never with a warning
        plots = [loss_curves(results, few), per_run(results, few), tokens_vs_batch(results, keys)]
        for plot in plots[:2]:
            plot.caption += note
        profiled, profiled_note = plotted_runs(results, [k for k in keys if k in results.profiles])
        breakdown = step_breakdown(results, profiled)
        rooflines = roofline_plots(results, profiled)
        for plot in ([breakdown] if breakdown else []) + rooflines:
            plot.caption += profiled_note.replace("runs", "profiled runs", 1)
    return plots + ([breakdown] if breakdown else []) + rooflines
