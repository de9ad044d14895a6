"""Plotly figures of the dashboard, the report and `ecisem validate` (pure: tables in, ``go.Figure`` out; no Streamlit
import, no metric maths)."""
from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#EECA3B", "#9D755D",
           "#FF9DA6", "#BAB0AC", "#2F6B9A", "#8C6D31")
"""Source colours (Tableau-like), assigned in sorted source-name order so a source keeps its colour everywhere."""
TERM_COLOURS = {"phi_c": "#4C78A8", "phi_h": "#F58518", "phi_rho": "#54A24B", "phi_div": "#B279A2",
                "base": "#BAB0AC"}
TERM_NAMES = {"phi_c": "φ_c consistency", "phi_h": "φ_h locality", "phi_rho": "φ_ρ residuality",
              "phi_div": "φ_div diversity",
              "base": "v(∅) FN discount, zero residuals"}
ROLE_COLOURS = {"query": "#1F2937", "positive": "#16A34A", "negative": "#9CA3AF"}
FONT = dict(family="Inter, 'Source Sans Pro', 'Helvetica Neue', Arial, sans-serif", size=13, color="#1F2937")


PAIRWISE_SCALE: tuple[tuple[float, str], ...] = ((0.0, "#B2182B"), (0.25, "#EF8A62"), (0.5, "#F7F7F7"),
                                                 (0.75, "#67A9CF"), (1.0, "#2166AC"))
"""The one colour scale of P(A > B), app and report alike: red near 0 (A below B), white at 0.5 (cannot tell),
blue near 1 (A above B). Explicit stops, not the name "RdBu", which plotly.js and plotly.py run in opposite
directions."""


def esc(value: Any) -> str:
    """User text (a source name) as plotly label text: plotly reads a small HTML subset in labels (``<b>``,
    ``<a href>``…), so the text is escaped; plotly shows the entities as the characters they stand for."""
    return html.escape(str(value), quote=True)


def source_colours(names: list[str] | pd.Index) -> dict[str, str]:
    """A fixed colour per source (sorted names → palette, cycling)."""
    return {n: PALETTE[i % len(PALETTE)] for i, n in enumerate(sorted(map(str, names)))}


AXIS = dict(gridcolor="#EEF0F3", linecolor="#D1D5DB", zerolinecolor="#D1D5DB", automargin=True, showline=False)
TEMPLATE = go.layout.Template(layout=dict(
    paper_bgcolor="white", plot_bgcolor="white", colorway=list(PALETTE), font=FONT, xaxis=AXIS, yaxis=AXIS,
    hoverlabel=dict(font_size=12), hovermode="closest"))
"""A small white template: plotly's built-in ones are deep-copied into every figure (tens of ms per slider move)."""


def _style(fig: go.Figure, title: str | None = None, height: int | None = None, legend_rows: int = 0) -> go.Figure:
    """House style: white template, left title, legend in a row between the title and the plot."""
    top = (44 if title else 12) + 26 * legend_rows
    fig.update_layout(
        template=TEMPLATE, margin=dict(l=10, r=10, t=top, b=10),
        title=dict(text=title, x=0, xanchor="left", y=1, yanchor="top", pad=dict(t=14),
                   font=dict(size=15)) if title else None,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0, title=None),
        height=height,
    )
    return fig


def _figure(traces: list[dict], title: str | None, height: int, legend_rows: int = 0, **layout) -> go.Figure:
    """A figure from plain trace/layout dicts, not validated property by property (the leaderboard figures are
    rebuilt on every slider move; validation is most of their cost). House style as :func:`_style`."""
    top = (44 if title else 12) + 26 * legend_rows
    base = dict(
        template=TEMPLATE.to_plotly_json(), margin=dict(l=10, r=10, t=top, b=10), height=height,
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="left", x=0.0),
        title=dict(text=title, x=0, xanchor="left", y=1, yanchor="top", pad=dict(t=14), font=dict(size=15))
        if title else dict(text=""),
    )
    for key, value in layout.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return go.Figure(data=traces, layout=base, _validate=False)


def eci_bars(sources: pd.DataFrame, colours: dict[str, str], ci: pd.DataFrame | None = None) -> go.Figure:
    """Horizontal bars of ECI_sem by source, rank 1 on top, with 95% CI error bars when ``ci`` (columns source,
    ci_low, ci_high) is given."""
    t = sources.sort_values("rank", ascending=False)
    score = t["eci_sem"].to_numpy(dtype=float)
    bar = dict(type="bar", x=score, y=[esc(v) for v in t["source"]], orientation="h",
               marker=dict(color=[colours[s] for s in t["source"]]),
               customdata=np.stack([t["info"], t["diversity"], t["n"]], axis=1),
               hovertemplate="<b>%{y}</b><br>ECI_sem %{x:.4g}<br>info %{customdata[0]:.4g}"
                             "<br>diversity %{customdata[1]:.3f}<br>%{customdata[2]:,} triplets<extra></extra>")
    if ci is not None:
        c = ci.set_index("source").reindex(t["source"])
        bar["error_x"] = dict(type="data", symmetric=False, array=c["ci_high"].to_numpy() - score,
                              arrayminus=score - c["ci_low"].to_numpy(), color="#374151", thickness=1.4, width=5)
    title = "ECI_sem by source" + (", 95% CI" if ci is not None else ", 95% CI computing…")
    return _figure([bar], title, max(260, 46 * len(t) + 90), xaxis=dict(title=dict(text="ECI_sem"),
                                                                        rangemode="tozero"))


def contributions(sources: pd.DataFrame) -> go.Figure:
    """Stacked Shapley contributions φ_c, φ_h, φ_ρ, φ_div of log ECI_sem per source, with the total marked."""
    t = sources.sort_values("rank", ascending=False)
    names = [esc(v) for v in t["source"]]
    traces = [dict(type="bar", x=t[col].to_numpy(dtype=float), y=names, orientation="h", name=TERM_NAMES[col],
                   marker=dict(color=TERM_COLOURS[col]),
                   hovertemplate="<b>%{y}</b><br>" + TERM_NAMES[col] + " %{x:.3f}<extra></extra>")
              for col in ("phi_c", "phi_h", "phi_rho", "phi_div")]
    traces.append(dict(type="scatter", x=np.log(t["eci_sem"].to_numpy(dtype=float)), y=names, mode="markers",
                       name="log ECI_sem", hovertemplate="<b>%{y}</b><br>log ECI_sem %{x:.3f}<extra></extra>",
                       marker=dict(symbol="diamond", size=11, color="#111827", line=dict(color="white", width=1))))
    # the legend at the foot of the figure: on a narrow page it wraps into more rows, which push the plot up
    # instead of running into the title
    return _figure(traces, "Why each score: term contributions", max(300, 46 * len(t) + 150),
                   legend=dict(yref="container", y=0.0, yanchor="bottom"),
                   barmode="relative", xaxis=dict(title=dict(text="contribution to log ECI_sem"),
                                                  zeroline=True, zerolinecolor="#6B7280"))


def pairwise_heatmap(pairwise: pd.DataFrame) -> go.Figure:
    """P(row source scores above column source), bootstrap share; diagonal blank."""
    z = pairwise.to_numpy(dtype=float)
    text = [["" if np.isnan(v) else f"{v:.2f}" for v in row] for row in z]
    heat = dict(type="heatmap", z=np.where(np.isnan(z), None, z).tolist(), x=[esc(v) for v in pairwise.columns],
                y=[esc(v) for v in pairwise.index], text=text, texttemplate="%{text}", colorscale=[list(stop) for stop in PAIRWISE_SCALE],
                zmin=0, zmax=1,
                zmid=0.5, colorbar=dict(title=dict(text="P"), thickness=12), xgap=2, ygap=2,
                hovertemplate="P(%{y} > %{x}) = %{z:.2f}<extra></extra>")
    return _figure([heat], "P(A scores above B)", max(300, 44 * len(pairwise) + 130),
                   yaxis=dict(autorange="reversed", title=dict(text="A (row)")),
                   xaxis=dict(title=dict(text="B (column)"), side="bottom"))


def waterfall(diff: pd.DataFrame, a: str, b: str) -> go.Figure:
    """Term-by-term Δ (A − B) of the Shapley contributions, ending in Δ log ECI_sem."""
    terms = diff[diff["term"] != "total"]
    total = diff[diff["term"] == "total"].iloc[0]
    x = [TERM_NAMES.get(t, t) for t in terms["term"]] + ["Δ log ECI_sem"]
    y = list(terms["delta"]) + [float(total["delta"])]
    fig = go.Figure(go.Waterfall(
        orientation="v", measure=["relative"] * len(terms) + ["total"], x=x, y=y,
        text=[f"{v:+.3f}" for v in y], textposition="outside",
        increasing=dict(marker=dict(color="#2563EB")), decreasing=dict(marker=dict(color="#DC2626")),
        totals=dict(marker=dict(color="#111827")), connector=dict(line=dict(color="#9CA3AF", width=1)),
        hovertemplate="%{x}: %{y:+.4f}<extra></extra>",
    ))
    fig.update_yaxes(title="Δ log ECI_sem (A − B)", zeroline=True, zerolinecolor="#6B7280",
                     gridcolor="#EEF0F3")
    span = max(abs(v) for v in y) if y else 1.0
    lo = min(0.0, min(np.cumsum(y[:-1]).min() if len(y) > 1 else 0.0, y[-1]))
    hi = max(0.0, max(np.cumsum(y[:-1]).max() if len(y) > 1 else 0.0, y[-1]))
    fig.update_yaxes(range=[lo - 0.18 * span, hi + 0.18 * span])
    return _style(fig, f"{a} vs {b}: where the difference comes from", height=420)


TERMS = (("c", "c  target consistency"), ("h", "h  semantic locality"), ("rho", "ρ  lexical residuality"),
         ("w", "w  weight"))


def term_distributions(parts: dict[str, pd.DataFrame], colours: dict[str, str], kind: str = "violin") -> go.Figure:
    """Distributions of c, h, ρ, w for each source in ``parts`` (source → its sampled triplets), side by side:
    violins (with box) or empirical CDFs."""
    fig = make_subplots(rows=1, cols=4, subplot_titles=[t for _, t in TERMS], horizontal_spacing=0.06)
    for j, (col, _) in enumerate(TERMS, start=1):
        for name, df in parts.items():
            v = df[col].to_numpy(dtype=float)
            if kind == "ecdf":
                xs = np.sort(v)
                fig.add_trace(go.Scatter(x=xs, y=np.arange(1, len(xs) + 1) / max(len(xs), 1), mode="lines",
                                         name=name, legendgroup=name, showlegend=j == 1,
                                         line=dict(color=colours[name], width=2),
                                         hovertemplate=f"{name}: {col} ≤ %{{x:.3f}} for %{{y:.0%}}<extra></extra>"),
                              row=1, col=j)
            else:
                fig.add_trace(go.Violin(y=v, name=name, legendgroup=name, showlegend=j == 1, box_visible=True,
                                        meanline_visible=True, points=False, line_color=colours[name],
                                        fillcolor=colours[name], opacity=0.55, spanmode="hard",
                                        hoverinfo="y+name"), row=1, col=j)
    if kind == "ecdf":
        fig.update_yaxes(range=[0, 1], tickformat=".0%")
    else:
        fig.update_xaxes(showticklabels=False)
    fig.update_annotations(font_size=13)
    _style(fig, None, height=400)
    fig.update_layout(margin=dict(t=78), legend=dict(y=1.2, yanchor="bottom"))  # legend above the subplot titles
    return fig


def geometry(points: pd.DataFrame, colour_by: str, colours: dict[str, str],
             links: pd.DataFrame | None = None) -> go.Figure:
    """UMAP scatter (WebGL). ``points`` has x, y, role, source, label (escaped text), pid (``customdata``, what a
    selection returns) and, for numeric colouring, the column ``colour_by`` (NaN for queries/positives).
    ``links`` (x0, y0, x1, y1, kind) draws the chosen query's q→p and q→n segments."""
    size = 6 if len(points) < 4000 else 4
    hover = "%{text}<extra></extra>"

    def scatter(df: pd.DataFrame, name: str, marker: dict, template: str = hover) -> dict:
        text = ("<b>" + df["role"] + "</b> · " + df["source"] + "<br>" + df["label"]).tolist()
        return dict(type="scattergl", x=df["x"].to_numpy(), y=df["y"].to_numpy(), mode="markers", name=name,
                    customdata=df["pid"].to_numpy(), text=text, hovertemplate=template, marker=marker)

    traces = []
    if colour_by in ("role", "source"):
        if colour_by == "role":
            groups = [(r, points[points["role"] == r], ROLE_COLOURS[r]) for r in ("negative", "positive", "query")]
        else:
            groups = [(s, points[(points["role"] == "negative") & (points["source"] == s)], colours[s])
                      for s in sorted(points.loc[points["role"] == "negative", "source"].unique())]
            groups += [(r, points[points["role"] == r], ROLE_COLOURS[r]) for r in ("positive", "query")]
        for name, df, colour in groups:
            if df.empty:
                continue
            big = name in ("query", "positive")
            marker = dict(color=colour, size=size + (3 if big else 0), opacity=0.8,
                          symbol={"query": "diamond", "positive": "star"}.get(name, "circle"))
            if big:
                marker["line"] = dict(width=0.5, color="white")
            traces.append(scatter(df, name, marker))
    else:
        base = points[points["role"] != "negative"]
        neg = points[points["role"] == "negative"]
        traces.append(scatter(base, "queries & positives", dict(color="#D1D5DB", size=size, symbol="diamond")))
        traces.append(scatter(neg, f"negatives by {colour_by}", dict(
            color=neg[colour_by].to_numpy(dtype=float), colorscale="Viridis", size=size + 1, opacity=0.85, cmin=0,
            cmax=1, colorbar=dict(title=dict(text=colour_by), thickness=12)),
            hover.replace("<extra>", f"<br>{colour_by} %{{marker.color:.3f}}<extra>")))
    if links is not None and not links.empty:
        for kind, colour, dash in (("positive", "#16A34A", "solid"), ("negative", "#DC2626", "dot")):
            seg = links[links["kind"] == kind]
            if seg.empty:
                continue
            xs = np.column_stack([seg["x0"], seg["x1"], np.full(len(seg), np.nan)]).ravel()
            ys = np.column_stack([seg["y0"], seg["y1"], np.full(len(seg), np.nan)]).ravel()
            traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", name=f"q→{kind[0]}", hoverinfo="skip",
                               line=dict(color=colour, width=2, dash=dash)))
    blank = dict(showticklabels=False, showgrid=False, zeroline=False, ticks="", showline=False, title=dict(text=""))
    return _figure(traces, None, 660, legend_rows=1, xaxis=blank, yaxis=blank, dragmode="lasso",
                   modebar=dict(orientation="v"),  # beside the map, not over the legend
                   plot_bgcolor="#FBFBFC")


def to_html(fig: go.Figure, title: str) -> str:
    """A self-contained HTML file of a figure (plotly.js inlined: opens offline)."""
    return fig.to_html(include_plotlyjs=True, full_html=True, default_width="100%", default_height="100%",
                       config={"displaylogo": False}).replace("<head>", f"<head><title>{title}</title>", 1)


def agreement_figure(table: pd.DataFrame, agreement: pd.DataFrame, scores: Mapping[str, pd.Series]) -> Any:
    """Plotly figure: left, Kendall τ and Spearman ρ per score with bootstrap CIs; right, ECI_sem against mean
    nDCG@10 per source (error bars: sd over seeds; dashed line: the untrained base)."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.45, 0.55],
                        subplot_titles=("Agreement with the downstream ranking (95% bootstrap CI over sources)",
                                        "ECI_sem vs downstream nDCG@10"))
    for col, label, colour in (("kendall", "Kendall τ", "#1f77b4"), ("spearman", "Spearman ρ", "#ff7f0e")):
        value = agreement["kendall_tau" if col == "kendall" else "spearman"]
        fig.add_trace(go.Bar(x=agreement["score"], y=value, name=label, marker_color=colour,
                             error_y=dict(type="data", symmetric=False,
                                          array=(agreement[f"{col}_ci_high"] - value).clip(lower=0),
                                          arrayminus=(value - agreement[f"{col}_ci_low"]).clip(lower=0))),
                      row=1, col=1)
    fig.update_yaxes(range=[-1.05, 1.05], title_text="rank correlation", row=1, col=1)
    trained = table[table["trained"]].set_index("source")
    eci = scores.get("eci_sem")
    if eci is not None:
        common = [s for s in trained.index if s in eci.index]
        fig.add_trace(go.Scatter(
            x=eci.loc[common], y=trained.loc[common, "ndcg10_mean"], mode="markers+text", text=common,
            textposition="top center", name="sources", marker=dict(size=11, color="#2ca02c"),
            error_y=dict(type="data", array=trained.loc[common, "ndcg10_sd"].fillna(0))), row=1, col=2)
        fig.update_xaxes(title_text="ECI_sem (frozen base encoder)", row=1, col=2)
    base = table.loc[~table["trained"], "ndcg10_mean"]
    if len(base):
        fig.add_hline(y=float(base.iloc[0]), line_dash="dash", line_color="grey", row=1, col=2,
                      annotation_text="untrained base", annotation_position="bottom right")
    fig.update_yaxes(title_text="nDCG@10 (mean over seeds)", row=1, col=2)
    fig.update_layout(template="plotly_white", height=480, width=1150, barmode="group",
                      legend=dict(orientation="h", y=-0.2))
    return fig


def explorer_map(points: pd.DataFrame, colours: dict[str, str], highlight: int | None = None,
                 selected: np.ndarray | None = None, density: bool = False) -> go.Figure:
    """The Triplet explorer's map (WebGL): one point per (negative text, source) occurrence, coloured by source.
    ``points`` (from ``ecisem_core.ui.explorer.map_points``) has pid (``customdata[0]``, what a selection
    returns), x, y, source, shared_by, n_triplets, label and query_label (escaped), c, h, rho, w, fn_score; the
    hover says by how many sources the point's negative text is shared. ``highlight``: a point id ringed in black
    (the table's chosen row); ``selected``: point ids kept bright, the others faded (the map selection);
    ``density``: filled density contours of all the drawn points under them (the points fainter), to see where they
    crowd when thousands overlap."""
    size = 7 if len(points) < 4000 else 5
    template = ("%{text}<br>c %{customdata[1]:.3f} · h %{customdata[2]:.3f} · ρ %{customdata[3]:.3f} · "
                "w %{customdata[4]:.3f} · FN score %{customdata[5]:.3f}<extra></extra>")
    shared = points["shared_by"].astype(int)
    count = points["n_triplets"].astype(int)
    text = ("<b>" + points["source"].astype(str) + "</b> · shared by " + shared.astype(str) + " source"
            + np.where(shared == 1, "", "s") + " · " + count.astype(str) + " triplet" + np.where(count == 1, "", "s")
            + np.where(count == 1, "", " (first shown)") + "<br>" + points["label"].astype(str)
            + "<br><i>query</i>: " + points["query_label"].astype(str))
    custom = np.round(points[["pid", "c", "h", "rho", "w", "fn_score"]].to_numpy(dtype=float), 4)
    chosen = None if selected is None else set(np.asarray(selected, dtype=np.int64).tolist())
    traces = []
    if density and len(points):
        traces.append(dict(type="histogram2dcontour", x=points["x"].to_numpy(), y=points["y"].to_numpy(),
                           name="density", ncontours=14, showscale=False, hoverinfo="skip", showlegend=False,
                           colorscale=[[0, "rgba(255,255,255,0)"], [1, "#1E3A8A"]], opacity=0.55,
                           contours=dict(coloring="fill", showlines=False)))
    for name in sorted(points["source"].unique()):
        mine = (points["source"] == name).to_numpy()
        df = points[mine]
        trace = dict(type="scattergl", x=df["x"].to_numpy(), y=df["y"].to_numpy(), mode="markers", name=name,
                     customdata=custom[mine].tolist(), text=text[mine].tolist(), hovertemplate=template,
                     marker=dict(color=colours.get(name, "#6B7280"), size=size, opacity=0.35 if density else 0.75,
                                 line=dict(width=0)))
        if chosen is not None:
            trace["selectedpoints"] = np.flatnonzero(df["pid"].isin(chosen).to_numpy()).tolist()
            trace["unselected"] = dict(marker=dict(opacity=0.12))
        traces.append(trace)
    if highlight is not None and highlight in set(points["pid"].tolist()):
        p = points[points["pid"] == highlight].iloc[0]
        traces.append(dict(type="scatter", x=[p["x"]], y=[p["y"]], mode="markers", name="chosen row",
                           hoverinfo="skip", marker=dict(symbol="circle-open", size=22, color="#111827",
                                                         line=dict(width=3))))
    blank = dict(showticklabels=False, showgrid=False, zeroline=False, ticks="", showline=False, title=dict(text=""))
    return _figure(traces, None, 560, legend_rows=1, xaxis=blank, yaxis=blank, dragmode="lasso",
                   modebar=dict(orientation="v"),  # beside the map, not over the legend
                   plot_bgcolor="#FBFBFC")


def learning_history(history: pd.DataFrame, rule_auc: float | None = None) -> go.Figure:
    """The learned false-negative scorer's cross-validated ROC AUC against the number of verdicts it was trained on
    (:func:`ecisem_core.curation.review.cv_auc_history`), ± one standard deviation over the folds; the rule-based
    FN score's AUC on the same items as a dashed line when given."""
    n = history["n_verdicts"].to_numpy(dtype=float)
    auc = history["cv_auc"].to_numpy(dtype=float)
    sd = history["cv_auc_std"].to_numpy(dtype=float)
    traces = [dict(type="scatter", x=n, y=auc, mode="lines+markers", name="learned scorer (CV)",
                   line=dict(color="#2563EB", width=2), error_y=dict(type="data", array=sd, color="#93C5FD"),
                   hovertemplate="%{x:,} verdicts<br>CV ROC AUC %{y:.3f}<extra></extra>")]
    if rule_auc is not None and np.isfinite(rule_auc) and len(n):
        traces.append(dict(type="scatter", x=[n.min(), n.max()], y=[rule_auc, rule_auc], mode="lines",
                           name="rule FN score (same items)", line=dict(color="#6B7280", dash="dash"),
                           hoverinfo="skip"))
    return _figure(traces, "Cross-validated AUC as verdicts accumulate", 300, legend_rows=1,
                   xaxis=dict(title=dict(text="verdicts")), yaxis=dict(title=dict(text="ROC AUC"), range=[0.5, 1.0]))
