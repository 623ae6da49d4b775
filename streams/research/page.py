"""A sweep's ``report.html``: self-contained (inline SVG, no script, no CDN) — the heatmap of out-of-sample Sharpe
over the first two swept parameters, the equity curves of the top N points, and the parameters chosen per fold."""

from __future__ import annotations

import html
from collections.abc import Sequence

import polars as pl

from streams.research.sweep import PointResult

COLOURS = ("#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#4e342e", "#ad1457")


def out_of_sample(rows: pl.DataFrame) -> pl.DataFrame:
    """Per point: the mean Sharpe over its out-of-sample windows (fold >= 1; the whole file without walk-forward)."""
    scored = rows.filter(pl.col("fold") >= 1) if rows["fold"].max() else rows
    return scored.group_by("point").agg(pl.col("sharpe").mean().alias("oos_sharpe")).sort("point")


def page(rows: pl.DataFrame, results: Sequence[PointResult], names: Sequence[str], instrument: str, top: int) -> str:
    oos = out_of_sample(rows)
    ranked = oos.sort("oos_sharpe", descending=True, nulls_last=True)["point"].to_list()[:top]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>tradecore sweep</title>"
        "<style>body{font:14px system-ui;margin:2em}td,th{padding:2px 8px;text-align:right}</style></head><body>"
        f"<h1>Sweep {html.escape(instrument)}: {len(results)} grid points</h1>"
        f"<h2>Out-of-sample Sharpe</h2>{_heatmap(oos, results, names)}"
        f"<h2>Chosen parameters per fold</h2>{_folds(rows, names)}"
        f"<h2>Equity of the top {len(ranked)}</h2>{_curves([results[i] for i in ranked], names)}</body></html>"
    )


def _label(result: PointResult, names: Sequence[str]) -> str:
    return ", ".join(f"{n}={result.params[n]}" for n in names)


def _heatmap(oos: pl.DataFrame, results: Sequence[PointResult], names: Sequence[str]) -> str:
    x_name, y_name = names[0], (names[1] if len(names) > 1 else None)
    xs = list(dict.fromkeys(r.params[x_name] for r in results))
    ys = list(dict.fromkeys(r.params[y_name] for r in results)) if y_name else [""]
    cells: dict[tuple[str, str], float | None] = {}
    for point, sharpe in oos.iter_rows():
        r = results[point]
        key = (r.params[x_name], r.params[y_name] if y_name else "")
        best = cells.get(key)  # more than two swept: the best over the others
        cells[key] = sharpe if best is None or (sharpe is not None and sharpe > best) else best
    known = [v for v in cells.values() if v is not None]
    lo, hi = (min(known), max(known)) if known else (0.0, 0.0)
    size, pad = 70, 90
    parts = []
    for j, y in enumerate(ys):
        parts.append(f"<text x='{pad - 6}' y='{pad + j * size + size / 2}' text-anchor='end'>{html.escape(y)}</text>")
        for i, x in enumerate(xs):
            value = cells.get((x, y))
            share = 0.5 if value is None or hi == lo else (value - lo) / (hi - lo)
            fill = "#ddd" if value is None else f"rgb({int(255 * (1 - share))},{int(200 * share + 40)},90)"
            text = "n/a" if value is None else f"{value:.2f}"
            parts.append(
                f"<rect class='cell' x='{pad + i * size}' y='{pad + j * size}' width='{size}' height='{size}' "
                f"fill='{fill}' stroke='#fff'><title>{html.escape(x_name)}={html.escape(x)} "
                f"{html.escape(y_name or '')}={html.escape(y)}: {text}</title></rect>"
                f"<text x='{pad + i * size + size / 2}' y='{pad + j * size + size / 2 + 4}' "
                f"text-anchor='middle'>{text}</text>"
            )
    for i, x in enumerate(xs):
        parts.append(
            f"<text x='{pad + i * size + size / 2}' y='{pad - 8}' text-anchor='middle'>{html.escape(x)}</text>"
        )
    width, height = pad + len(xs) * size + 10, pad + len(ys) * size + 10
    return (
        f"<svg id='heatmap' width='{width}' height='{height}' xmlns='http://www.w3.org/2000/svg' font-size='12' "
        "role='img' aria-label='heatmap of out-of-sample Sharpe'>"
        f"<text x='{pad}' y='20'>{html.escape(x_name)} →</text><text x='4' y='{pad - 8}'>{html.escape(y_name or '')} ↓"
        f"</text>{''.join(parts)}</svg>"
    )


def _folds(rows: pl.DataFrame, names: Sequence[str]) -> str:
    chosen = rows.filter(pl.col("chosen") & (pl.col("fold") >= 1)).sort("fold")
    if not chosen.height:
        return "<p>no walk-forward (give --walk-forward K): every point scored over the whole file</p>"
    headings = ("fold", "out-of-sample from", *names, "in-sample Sharpe", "out-of-sample Sharpe", "out-of-sample PnL")
    columns = ("fold", "start", *names, "in_sample_sharpe", "sharpe", "pnl")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in columns) + "</tr>"
        for r in chosen.iter_rows(named=True)
    )
    return f"<table id='folds'><tr>{head}</tr>{body}</table>"


def _fmt(value: object) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _curves(results: Sequence[PointResult], names: Sequence[str], width: int = 900, height: int = 300) -> str:
    points = [(t, e) for r in results for t, e in r.curve]
    if len(points) < 2:
        return "<p>no equity curve</p>"
    t0, t1 = min(t for t, _ in points), max(t for t, _ in points)
    lo, hi = min(e for _, e in points), max(e for _, e in points)
    span_t, span_e = (t1 - t0) or 1, (hi - lo) or 1.0
    lines, legend = [], []
    for n, r in enumerate(results):
        colour = COLOURS[n % len(COLOURS)]
        xy = " ".join(f"{(t - t0) / span_t * width:.1f},{height - (e - lo) / span_e * height:.1f}" for t, e in r.curve)
        lines.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.5' points='{xy}'/>")
        legend.append(f"<li style='color:{colour}'>{html.escape(_label(r, names))}</li>")
    return (
        f"<svg width='{width}' height='{height + 20}' viewBox='0 -10 {width} {height + 20}' "
        f"xmlns='http://www.w3.org/2000/svg' role='img' aria-label='equity curves'>{''.join(lines)}"
        f"<text x='0' y='{height + 8}' font-size='11'>min {lo:,.2f}</text>"
        f"<text x='0' y='0' font-size='11'>max {hi:,.2f}</text></svg><ul>{''.join(legend)}</ul>"
    )
