"""Render a built Leaderboard as markdown, a PNG bar chart and a self-contained sortable HTML page.

All three show the same frames as the CSVs. For readability they round numbers to two decimals,
shorten sha256 to 12 characters and leave out the long provenance columns (versions,
encoder_path), which stay in the CSVs.
"""

from __future__ import annotations

import base64
import html
import io
import math

import numpy as np
import pandas as pd

from tokes_bench.results.leaderboard import Leaderboard

HIDDEN_COLUMNS = ("versions", "encoder_path")
SHA_COLUMNS = ("encoder_sha256", "tokes_sha256", "mae_sha256")
LONG_TEXT_COLUMNS = ("citation", "note")
TITLES = {"classification": "Classification", "detection": "Detection", "segmentation": "Segmentation",
          "vost": "Video object segmentation"}


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))


def _text(v, col: str) -> str:
    """How one cell reads in markdown and HTML."""
    if _missing(v):
        return ""
    if col in SHA_COLUMNS:
        return str(v)[:12]
    if isinstance(v, (float, np.floating)):
        return f"{v:.2f}"
    return str(v)


def _visible(df: pd.DataFrame) -> list[str]:
    return [c for c in df.columns if c not in HIDDEN_COLUMNS]


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table of the frame's visible columns."""
    cols = _visible(df)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df[cols].itertuples(index=False, name=None):
        cells = (_text(v, c).replace("|", "\\|") for v, c in zip(row, cols, strict=True))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _intro(lb: Leaderboard) -> str:
    i = lb.info
    return (
        f"Built from {i['n_records']} evaluation records in {len(i['files'])} file(s) "
        f"({i['n_duplicates']} exact duplicates counted once, {i['n_non_eval']} non-evaluation records "
        f"skipped). Values in percent: mean and sample std over seeds. Intervals: 95% percentile "
        f"bootstrap, {i['n_boot']} draws, seed {i['seed']}. Rows with source=published are numbers "
        f"from the cited papers, shown for reference only and never used in a statistic or rank."
    )


SUMMARY_NOTE = (
    "Rank rule (computed encoders only): more headline columns first, then the lowest rank_score "
    "(mean over the encoder's headline columns of its rank in that column, 1 = best, ties averaged)."
)


def markdown(lb: Leaderboard) -> str:
    """The whole leaderboard as one markdown document (summary, comparison, task tables, chart)."""
    parts = ["# tokes-bench leaderboard", _intro(lb), "## Summary", SUMMARY_NOTE, markdown_table(lb.summary),
             "## TOKES vs MAE (matched arch and pretraining epochs)"]
    if lb.comparison.empty:
        parts.append("No TOKES and MAE encoders with the same arch and pretraining epochs share an "
                     "evaluation.")
    else:
        parts.append("diff = TOKES mean - MAE mean; [ci_low, ci_high] is its 95% interval.")
        parts.append(markdown_table(lb.comparison))
    for task, table in lb.tasks.items():
        parts += [f"## {TITLES[task]}", markdown_table(table)]
    parts.append("![leaderboard chart](leaderboard.png)")
    return "\n\n".join(parts) + "\n"


def encoder_label(row) -> str:
    """Short legend label of an encoder: method, arch, epochs and sha prefix (or 'published')."""
    ep = "?" if _missing(row["pretrain_epochs"]) else row["pretrain_epochs"]
    tail = "published" if row["source"] == "published" else str(row["encoder_sha256"])[:8]
    return f"{row['method']} {row['arch']} {ep}ep ({tail})"


def _task_panel(ax, cells: pd.DataFrame, task: str, colors: dict) -> None:
    sub = cells[cells["task"] == task]
    groups = sorted({(r.protocol, r.dataset, r.split, r.metric) for r in sub.itertuples()})
    encoders = list(dict.fromkeys(encoder_label(r) for _, r in sub.sort_values("source").iterrows()))
    width = 0.8 / max(len(encoders), 1)
    for j, label in enumerate(encoders):
        rows = sub[[encoder_label(r) == label for _, r in sub.iterrows()]]
        xs, ys, err = [], [], [[], []]
        for r in rows.itertuples():
            xs.append(groups.index((r.protocol, r.dataset, r.split, r.metric)) - 0.4 + width * (j + 0.5))
            ys.append(r.mean)
            ok = np.isfinite(r.ci_low)
            err[0].append(r.mean - r.ci_low if ok else np.nan)
            err[1].append(r.ci_high - r.mean if ok else np.nan)
        published = rows["source"].iloc[0] == "published"
        ax.bar(xs, ys, width, yerr=err, capsize=3, label=label, color="none" if published else colors[label],
               edgecolor="black" if published else colors[label], hatch="//" if published else None)
    ax.set_xticks(range(len(groups)), [f"{p}\n{d}/{s}\n{m}" for p, d, s, m in groups], fontsize=7)
    ax.set_title(TITLES[task])
    ax.set_ylabel("%")
    ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _comparison_panel(ax, comp: pd.DataFrame) -> None:
    labels, ys, err = [], [], [[], []]
    for r in comp.itertuples():
        ep = "?" if _missing(r.pretrain_epochs) else r.pretrain_epochs
        labels.append(f"{r.task}/{r.protocol}\n{r.dataset} {r.metric}\n{r.arch} {ep}ep")
        ys.append(r.diff)
        ok = np.isfinite(r.ci_low)
        err[0].append(r.diff - r.ci_low if ok else np.nan)
        err[1].append(r.ci_high - r.diff if ok else np.nan)
    colors = ["tab:green" if y >= 0 else "tab:red" for y in ys]
    ax.bar(range(len(ys)), ys, 0.6, yerr=err, capsize=3, color=colors)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(labels)), labels, fontsize=7)
    ax.set_title("TOKES - MAE (95% bootstrap interval; none drawn where one seed)")
    ax.set_ylabel("difference (points)")


def chart_png(lb: Leaderboard) -> bytes:
    """Grouped bars per task (mean, 95% bootstrap interval of the mean) plus a TOKES-MAE panel; PNG bytes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    tasks = list(lb.tasks)
    n = len(tasks) + (0 if lb.comparison.empty else 1)
    n_groups = max([len(lb.comparison)] + [
        len(lb.cells[lb.cells["task"] == t][["protocol", "dataset", "split", "metric"]].drop_duplicates())
        for t in tasks])
    fig = Figure(figsize=(max(8.0, 1.6 * n_groups + 4.0), 3.6 * n), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    labels = list(dict.fromkeys(encoder_label(r) for _, r in lb.cells.iterrows()))
    palette = [f"C{i % 10}" for i in range(len(labels))]
    colors = dict(zip(labels, palette, strict=True))
    for ax, task in zip(axes[: len(tasks)], tasks, strict=True):
        _task_panel(ax, lb.cells, task, colors)
    if not lb.comparison.empty:
        _comparison_panel(axes[-1], lb.comparison)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def html_table(df: pd.DataFrame, table_id: str) -> str:
    """An HTML table whose cells carry their raw value in data-v (for exact, numeric sorting)."""
    cols = _visible(df)
    head = "".join(f'<th title="click to sort">{html.escape(c)}</th>' for c in cols)
    body = []
    for row in df[cols].itertuples(index=False, name=None):
        tds = []
        for v, c in zip(row, cols, strict=True):
            raw = "" if _missing(v) else str(v)
            cls = ' class="long"' if c in LONG_TEXT_COLUMNS else ""
            tds.append(f'<td{cls} data-v="{html.escape(raw)}">{html.escape(_text(v, c))}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f'<div class="scroll"><table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


SORT_JS = """
(function () {
  function key(td) { return td.getAttribute('data-v'); }
  function sortBy(table, col, th) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var dir = th.getAttribute('aria-sort') === 'ascending' ? 'descending' : 'ascending';
    var sign = dir === 'ascending' ? 1 : -1;
    var numeric = rows.every(function (r) {
      var v = key(r.cells[col]);
      return v === '' || isFinite(Number(v));
    });
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === '' || y === '') { return (x === '') - (y === ''); }
      if (numeric) { return sign * (Number(x) - Number(y)); }
      return sign * x.localeCompare(y);
    });
    rows.forEach(function (r) { tbody.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', dir);
  }
  Array.prototype.forEach.call(document.querySelectorAll('table.sortable'), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.addEventListener('click', function () { sortBy(table, i, th); });
    });
  });
})();
"""

CSS = """
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: left; white-space: nowrap; }
td.long { white-space: normal; min-width: 32em; font-size: 0.9em; }
div.scroll { overflow-x: auto; }
th { background: #eee; cursor: pointer; user-select: none; }
th[aria-sort=ascending]::after { content: " \\25B2"; }
th[aria-sort=descending]::after { content: " \\25BC"; }
tr:nth-child(even) td { background: #fafafa; }
img { max-width: 100%; }
"""


def html_page(lb: Leaderboard, png: bytes) -> str:
    """One static page (inline CSS, JS and chart) whose table headers sort on click; no server needed."""
    sections = [f"<h2>Summary</h2><p>{html.escape(SUMMARY_NOTE)}</p>{html_table(lb.summary, 't-summary')}",
                "<h2>TOKES vs MAE (matched arch and pretraining epochs)</h2>"
                + html_table(lb.comparison, "t-comparison")]
    sections += [f"<h2>{TITLES[t]}</h2>{html_table(df, f't-{t}')}" for t, df in lb.tasks.items()]
    chart = base64.b64encode(png).decode("ascii")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>tokes-bench leaderboard</title><style>{CSS}</style></head><body>"
        f"<h1>tokes-bench leaderboard</h1><p>{html.escape(_intro(lb))}</p>{''.join(sections)}"
        f'<h2>Chart</h2><img alt="leaderboard chart" src="data:image/png;base64,{chart}">'
        f"<script>{SORT_JS}</script></body></html>\n"
    )

