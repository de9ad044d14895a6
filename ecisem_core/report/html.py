"""One self-contained HTML report of a scoring run: settings, leaderboard with CI, Shapley contributions,
P(A > B), a 2-D map of the embeddings and the flagged triplets.

    prep = prepare(triplets, encoder, config); result = score_prepared(prep, config)
    html_text = report_html(prep, result, data=["bm25.jsonl", "llm.jsonl"])
    write_report("report.html", html_text)

Self-contained: plotly.js is inlined once (from the installed ``plotly`` package) and no element loads anything
from a URL, so the file opens offline and can be mailed. Every piece of user text (source names, queries,
passages, reasons, file names) is ``html.escape``d, in tables and in the figures' labels (plotly's labels accept
a subset of HTML; escaped text is shown literally), and the figures' JSON escapes ``<``, ``>`` and ``/``, so a
negative such as ``</script><script>…`` is shown, never run.

The 2-D map uses :mod:`ecisem_core.embed.projection` (UMAP, the dashboard's layout and cache) when that module is
installed, otherwise PCA of a sample of the same kind, and the figure's title says which.
"""
from __future__ import annotations

import html
import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecisem_core import __version__
from ecisem_core.embed import projection
from ecisem_core.hashing import content_key
from ecisem_core.io.atomic import write_file_atomically
from ecisem_core.report import figures
from ecisem_core.score import Prepared, ScoreResult

TOP_FLAGGED: int = 50
"""Flagged triplets listed (highest fn_score first)."""
POINTS_PER_SOURCE: int = 150
"""Triplets per source drawn on the 2-D map (sampled evenly per source, by a seeded content hash)."""
HOVER_CHARS: int = 160
"""Characters of a text shown when hovering a point of the map."""
PLOT_CONFIG: dict[str, Any] = {"displaylogo": False, "responsive": True}
ROLE_MARKERS = {"query": {"symbol": "diamond", "color": "#222222"},
                "positive": {"symbol": "circle-open", "color": "#222222"}}
"""Queries and positives are black (diamonds, open circles); negatives take the dashboard's colour of their source."""


def esc(value: Any) -> str:
    """``html.escape`` of ``str(value)`` (quotes included)."""
    return html.escape(str(value), quote=True)


def _num(v: Any, spec: str = ".4g") -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return esc(v)
    return "–" if not np.isfinite(f) else format(f, spec)


# ----------------------------------------------------------------------------------------------- figures


def _fig_html(fig: Any, div_id: str) -> str:
    import plotly.io as pio

    return pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=PLOT_CONFIG,
                       default_width="100%", default_height=f"{fig.layout.height or 420}px")


def pca_2d(x: np.ndarray) -> np.ndarray:
    """First two principal components of the rows of ``x`` (centred SVD; each axis' sign fixed so that its
    largest loading is positive, which makes the result deterministic)."""
    x = np.asarray(x, dtype=np.float64)
    xc = x - x.mean(axis=0, keepdims=True)
    if xc.shape[0] < 2:
        return np.zeros((xc.shape[0], 2))
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    comps = vt[:2]
    signs = np.sign(comps[np.arange(comps.shape[0]), np.abs(comps).argmax(axis=1)])
    comps = comps * signs[:, None]
    out = xc @ comps.T
    if out.shape[1] < 2:
        out = np.column_stack([out, np.zeros(len(out))])
    return out


def projection_module() -> Any | None:
    """:mod:`ecisem_core.embed.projection` (UMAP, shared with the dashboard's Geometry page) when installed, else None."""
    if importlib.util.find_spec("ecisem_core.embed.projection") is None:
        return None
    return projection if hasattr(projection, "project") else None


@dataclass
class MapPoints:
    """Points of the 2-D map: coordinates, role, source (for negatives; "" otherwise), hover text, method."""

    xy: np.ndarray
    role: np.ndarray
    source: np.ndarray
    text: list[str]
    method: str


def _hover(texts: list[str], idx: np.ndarray) -> list[str]:
    return [esc(texts[i][:HOVER_CHARS] + ("…" if len(texts[i]) > HOVER_CHARS else "")) for i in idx]


def map_points(prep: Prepared, per_source: int = POINTS_PER_SOURCE, seed: int = 0,
               cache_dir: str | os.PathLike[str] | None = None, use_umap: bool = True) -> MapPoints:
    """Queries, positives and negatives of up to ``per_source`` triplets per source, laid out in 2-D.

    With :mod:`ecisem_core.embed.projection` installed (and ``use_umap``): its :func:`project` (UMAP, cosine; same
    sample and same on-disk cache as the dashboard). Otherwise PCA (:func:`pca_2d`) of the same kind of sample
    (a seeded content-hash sample per source, each unique query and positive once), and the method says so.
    """
    e = prep.embedded
    mod = projection_module() if use_umap else None
    if mod is not None:
        proj = mod.project(e, prep.triplets, data_key=mod.data_fingerprint(prep.triplets),
                           encoder_id=prep.encoder.model_id, cap=per_source, seed=seed, cache_dir=cache_dir)
        pts = proj.points
        role = pts["role"].to_numpy(str)
        source = np.where(role == "negative", pts["source"].to_numpy(str), "")
        return MapPoints(pts[["x", "y"]].to_numpy(np.float64), role, source,
                         _hover(e.texts, pts["text_index"].to_numpy()), "UMAP (cosine, umap-learn)")
    t = prep.triplets
    keys = content_key(t, seed)
    picked = []
    for code in range(len(prep.source_names)):
        idx = np.flatnonzero(prep.source_codes == code)
        picked.append(idx[np.argsort(keys[idx], kind="stable")[:per_source]])
    rows = np.sort(np.concatenate(picked)) if picked else np.zeros(0, np.int64)
    text_idx, roles, sources = [], [], []
    for kind, col in (("query", e.qi), ("positive", e.pi)):
        uniq = np.unique(col[rows])
        text_idx.append(uniq)
        roles += [kind] * uniq.size
        sources += [""] * uniq.size
    text_idx.append(e.ni[rows])
    roles += ["negative"] * rows.size
    sources += t["source"].to_numpy(str)[rows].tolist()
    idx_a = np.concatenate(text_idx).astype(np.int64)
    why = "not requested" if not use_umap else "the projection module is not installed"
    return MapPoints(pca_2d(e.matrix[idx_a]) if idx_a.size else np.zeros((0, 2)), np.asarray(roles),
                     np.asarray(sources), _hover(e.texts, idx_a),
                     f"PCA, first two principal components (UMAP {why})")


def map_figure(points: MapPoints, colours: Mapping[str, str]) -> Any:
    """Scatter of the map: negatives coloured by source (``colours``, the dashboard's), queries and positives in
    their own colours."""
    import plotly.graph_objects as go

    fig = go.Figure()
    sources = sorted(set(points.source[points.role == "negative"]))
    fallback = figures.source_colours(sources)
    for src in sources:
        m = (points.role == "negative") & (points.source == src)
        fig.add_scattergl(x=points.xy[m, 0], y=points.xy[m, 1], mode="markers", name=f"negative · {esc(src)}",
                          marker={"size": 6, "color": colours.get(src, fallback[src]), "opacity": 0.75},
                          text=[points.text[j] for j in np.flatnonzero(m)],
                          hovertemplate="negative · " + esc(src) + "<br>%{text}<extra></extra>")
    for role in ("query", "positive"):
        m = points.role == role
        fig.add_scattergl(x=points.xy[m, 0], y=points.xy[m, 1], mode="markers", name=role,
                          marker={"size": 7, "opacity": 0.8, **ROLE_MARKERS[role]},
                          text=[points.text[j] for j in np.flatnonzero(m)],
                          hovertemplate=role + "<br>%{text}<extra></extra>")
    fig.update_layout(template="plotly_white", height=560, margin={"t": 50},
                      title=f"2-D map of the embeddings: {points.method}",
                      xaxis_title="dimension 1", yaxis_title="dimension 2")
    return fig


# ----------------------------------------------------------------------------------------------- tables


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """An HTML table; ``header`` and cells must already be escaped/formatted."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def leaderboard_table(sources: pd.DataFrame) -> str:
    header = ["rank", "source", "triplets", "ECI_sem", "95% CI", "ECI_sem / d", "info", "diversity",
              "classic ECI", "K", "FN rate", "rank stability"]
    rows = []
    for r in sources.itertuples(index=False):
        rows.append([_num(r.rank, ".0f"), esc(r.source), f"{int(r.n):,}", _num(r.eci_sem), f"[{_num(r.ci_low)}, "
                     f"{_num(r.ci_high)}]", _num(r.eci_sem_per_dim), _num(r.info), _num(r.diversity, ".3f"),
                     _num(r.eci_v1, ".3f"), _num(r.k, "g"), _num(100 * r.fn_rate, ".1f") + "%",
                     _num(100 * r.stability, ".0f") + "%" if np.isfinite(r.stability) else "–"])
    return _table(header, rows, "num")


def flagged_rows(result: ScoreResult, top: int = TOP_FLAGGED) -> pd.DataFrame:
    """Flagged triplets (fn_flag), one row per (query, negative) with every source it appears in, highest
    fn_score first (ties: query id, negative id), at most ``top``."""
    t = result.triplets
    f = t[t["fn_flag"].to_numpy(bool)]
    if f.empty:
        return f.assign(sources="")
    srcs = f.groupby(["query_id", "negative_id"], sort=False)["source"].agg(lambda s: ", ".join(sorted(set(s))))
    first = f.drop_duplicates(["query_id", "negative_id"]).set_index(["query_id", "negative_id"])
    first["sources"] = srcs
    first = first.reset_index().sort_values(["fn_score", "query_id", "negative_id"], ascending=[False, True, True],
                                            kind="stable")
    return first.head(top).reset_index(drop=True)


def flagged_table(rows: pd.DataFrame) -> str:
    has_label = "fn_label" in rows.columns and rows["fn_label"].notna().any()
    header = ["#", "fn_score", "source(s)", "query", "positive", "negative", "reasons"]
    if has_label:
        header.append("label")
    out = []
    for i, r in enumerate(rows.itertuples(index=False), start=1):
        cells = [str(i), _num(r.fn_score, ".3f"), esc(r.sources), esc(r.query),
                 f'<div class="passage">{esc(r.positive)}</div>', f'<div class="passage">{esc(r.negative)}</div>',
                 "<br>".join(esc(x) for x in str(r.fn_reasons).split("; ") if x)]
        if has_label:
            lab = r.fn_label
            cells.append("–" if pd.isna(lab) else ("false negative" if lab > 0.5 else "negative"))
        out.append(cells)
    return _table(header, out, "flagged")


def settings_table(settings: dict[str, Any]) -> str:
    rows = []
    for k, v in settings.items():
        if isinstance(v, (list, tuple)):
            v = ", ".join(str(x) for x in v) if v else "–"
        elif isinstance(v, dict):
            v = json.dumps(v, sort_keys=True, default=str)
        elif v is None:
            v = "–"
        rows.append([esc(k), f"<code>{esc(v)}</code>"])
    return _table(["setting", "value"], rows, "settings")


# ----------------------------------------------------------------------------------------------- page

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:1rem 2rem;
color:#222;line-height:1.45}
h1{margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;margin:.6rem 0;font-size:.9rem;width:100%}
th,td{border:1px solid #ddd;padding:.3rem .5rem;vertical-align:top;text-align:left}
th{background:#f4f6f8} table.num td{text-align:right} table.num td:nth-child(2){text-align:left}
table.settings{width:auto} code{font-size:.85rem;word-break:break-all}
table.flagged td:nth-child(4){min-width:9em} table.flagged td:nth-child(7){min-width:16em;font-size:.8rem}
.passage{max-height:9em;overflow:auto;font-size:.85rem} .note{color:#555;font-size:.9rem}
nav a{margin-right:1rem}
"""


def report_html(prep: Prepared, result: ScoreResult, *, data: Sequence[str] = (), hybrids: Sequence[str] = (),
                top: int = TOP_FLAGGED, points_per_source: int = POINTS_PER_SOURCE,
                load_summary: str | None = None, title: str = "ECIsem Explorer report",
                cache_dir: str | os.PathLike[str] | None = None, use_umap: bool = True) -> str:
    """The whole report as one HTML string (see the module docstring). ``cache_dir``: where the UMAP layout is
    cached (the embedding cache root by default); ``use_umap=False`` draws the map with PCA."""
    from plotly.offline import get_plotlyjs

    config = result.config
    s = result.sources
    try:
        plotly_version = version("plotly")
    except PackageNotFoundError:  # pragma: no cover - plotly is a dependency
        plotly_version = "?"
    settings: dict[str, Any] = {
        "encoder": result.encoder_id, "embedding dimension d": result.dim,
        "κ (diversity strength)": config.kappa_for(result.dim),
        **{k: v for k, v in config.to_dict().items() if k != "notes"},
        "data": [str(d) for d in data], "hybrids": list(hybrids),
        "triplets": len(result.triplets), "queries": int(result.triplets["query_id"].nunique()),
        "ecisem version": __version__, "plotly version": plotly_version,
    }
    points = map_points(prep, points_per_source, config.seed, cache_dir=cache_dir, use_umap=use_umap)
    colours = figures.source_colours(s["source"])  # the dashboard's colours: one colour per source everywhere
    flagged = flagged_rows(result, top)
    n_flag = int(result.triplets["fn_flag"].sum())
    n_junk = int(prep.flags["junk_flag"].sum()) if "junk_flag" in prep.flags.columns else 0
    best = s.iloc[0] if len(s) else None
    headline = (f"{len(s)} sources, {len(result.triplets):,} triplets; top: <b>{esc(best.source)}</b> "
                f"(ECI_sem {_num(best.eci_sem)})" if best is not None else "no sources")
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>', "</head><body>",
        f"<h1>{esc(title)}</h1><p>{headline}.</p>",
        '<nav><a href="#leaderboard">Leaderboard</a><a href="#contributions">Contributions</a>'
        '<a href="#pairwise">P(A&gt;B)</a><a href="#map">Map</a><a href="#flagged">Flagged triplets</a>'
        '<a href="#settings">Settings</a></nav>',
        '<h2 id="leaderboard">Leaderboard</h2>',
        '<p class="note">ECI_sem = (1/κ)·log det(I + κM), M the weighted residual information matrix of a sample of '
        "each source (our construction of the paper's ECI_sem); classic ECI = ln(1+K) × harmonic mean of signal "
        "and margin, exactly as the paper defines it. 95% interval: bootstrap over queries. Rank stability: share of "
        "jittered settings under which the source keeps its rank.</p>",
        leaderboard_table(s), _fig_html(figures.eci_bars(s, colours, s[["source", "ci_low", "ci_high"]]),
                                        "fig-leaderboard"),
        '<h2 id="contributions">Why this rank: term contributions</h2>',
        '<p class="note">Exact Shapley values of log ECI_sem over four players: target consistency c (α), semantic '
        "locality h (β), lexical residuality ρ (γ) and diversity (κ). With every part off, ECI_sem = 1.</p>",
        _fig_html(figures.contributions(s), "fig-contributions"),
        '<h2 id="pairwise">Pairwise: P(A &gt; B)</h2>', _fig_html(figures.pairwise_heatmap(result.pairwise), "fig-pairwise"),
        '<h2 id="map">Geometry</h2>',
        f'<p class="note">Up to {points_per_source} triplets per source; method: {esc(points.method)}.</p>',
        _fig_html(map_figure(points, colours), "fig-map"),
        '<h2 id="flagged">Flagged triplets (likely false negatives)</h2>',
        f'<p class="note">{n_flag:,} of {len(result.triplets):,} triplets are flagged as likely false negatives '
        f"(junk negatives, {n_junk:,} here, are counted apart and not listed). Top {len(flagged)} by fn_score, one row per "
        "query and negative with every source it appears in.</p>",
        flagged_table(flagged) if len(flagged) else "<p>No triplet is flagged.</p>",
        '<h2 id="settings">Settings used</h2>', settings_table(settings),
    ]
    if load_summary:
        parts.append(f"<h3>Loading</h3><pre>{esc(load_summary)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(path: str | os.PathLike[str], text: str) -> Path:
    """Write the report atomically (temp file + rename); returns the path. ``InputError`` when it cannot be
    written (a folder, an unwritable place)."""
    return write_file_atomically(path, lambda p: p.write_text(text, encoding="utf-8"))
