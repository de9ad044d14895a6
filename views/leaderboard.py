"""Leaderboard: sources ranked by ECI_sem, with CI, classic ECI, contributions, P(A > B) and rank stability."""
from __future__ import annotations

import streamlit as st

from ecisem_core.report import figures
from ecisem_core.ui import curate, data, explain, layout, tables
from ecisem_core.ui.store import progress_line
from ecisem_core.ui.tables import COLUMN_HELP
from ecisem_core.ui.text import md_escape

POLL_SECONDS = 0.5  # how often pending background results are checked (only while some are pending)
PLOT_CONFIG = {"displaylogo": False}


@st.fragment(run_every=POLL_SECONDS)
def wait_for(s: layout.Scored, kinds: tuple[str, ...], bootstrap: int, trials: int) -> None:
    """Start the background results missing from the page once the settings have settled; say what is still
    computing; re-run the page as soon as one of them is ready."""
    ready = {"uncertainty": data.uncertainty, "contributions": data.contributions}
    pending = {k: ready[k](s.dataset, s.ctx.encoder, s.request, s.prep) for k in kinds}
    if any(p.value is not None or p.error for p in pending.values()):
        st.rerun()
    if any(data.finishes_within(p, POLL_SECONDS) for p in pending.values()):  # nearly done: no need for a poll
        st.rerun()
    if "uncertainty" in kinds:
        fraction, text = progress_line(pending["uncertainty"].progress, "95% intervals, P(A > B), rank stability")
        st.progress(fraction, text=text)
        st.caption(f"Bootstrap B = {bootstrap} over queries and {trials} jittered settings, in the background. "
                   "The scores shown are final for these settings; the other columns fill in when ready.")


def download_html(col, label: str, fig, title: str, file_name: str) -> None:
    col.download_button(label, lambda: figures.to_html(fig, title), file_name=file_name, mime="text/html",
                        icon=":material/download:", width="stretch")


def judged(s: layout.Scored) -> dict[str, float] | None:
    """ECI_sem per source without the triplets the annotators judged false negatives (None: none judged)."""
    store, _ = curate.try_open_store()
    verdicts = curate.all_verdicts(store) if store is not None else curate.EMPTY_VERDICTS
    return explain.judged_what_if(s.dataset, s.ctx.encoder, s.request, s.prep, verdicts)


def show_fn_what_if(contrib_sources, penalty: float, without_judged: dict[str, float] | None = None) -> None:
    """How much of each source's score comes from triplets flagged as likely false negatives (and from those the
    annotators judged false negatives, when there are any), and the ranking with them left out (one more log-det
    per source each)."""
    what = tables.fn_what_if(contrib_sources, without_judged)
    moved = int((what["change"].str.startswith(("↑", "↓"))).sum())
    title = ("What if the flagged false negatives were left out? "
             + (f"{moved} source(s) change rank" if moved else "no rank changes"))
    if without_judged:
        moved_j = int((what["change (judged)"].str.startswith(("↑", "↓"))).sum())
        title += f" · without the judged ones: {moved_j}" if moved_j else " · without the judged ones: none"
    with st.expander(title, icon=":material/rule:"):
        st.caption("Each source scored again without its triplets flagged as likely false negatives (the False "
                   "negatives page lists them with reasons). A large share from flagged triplets means the score "
                   "leans on negatives that may be paraphrases of the positive — they hurt training."
                   + (" The last columns leave out instead the triplets the annotators judged false negatives "
                      "(consensus over every batch)." if without_judged else
                      " Once annotators judge triplets, the ranking without the judged false negatives appears "
                      "here too.")
                   + (f" The current settings already down-weight flagged triplets (φ = {penalty:g})."
                      if penalty else " The FN penalty φ in the sidebar down-weights them in the score itself."))
        st.dataframe(what, hide_index=True, width="stretch", column_config={
            "ECI_sem": st.column_config.NumberColumn(format="%.4g"),
            "ECI_sem without flagged": st.column_config.NumberColumn(format="%.4g"),
            "share from flagged": st.column_config.NumberColumn(
                format="percent", help="1 − ECI_sem without / ECI_sem (negative: the source scores higher without "
                                       "them, since M is a mean over its triplets)"),
            "FN rate": st.column_config.NumberColumn(format="percent"),
            "ECI_sem without judged FNs": st.column_config.NumberColumn(format="%.4g"),
            "share from judged FNs": st.column_config.NumberColumn(format="percent"),
        })


def main() -> None:
    s = layout.scored_page("Leaderboard")
    layout.mark("scored")
    if s is None:
        return
    res = s.result
    head = st.container()  # filled after the table: the table is what a slider move waits for
    unc_done = data.uncertainty_ready(s.dataset, s.ctx.encoder, s.request)
    colours = figures.source_colours(s.dataset.sources)
    board = tables.leaderboard(res.sources, unc_done.sources if unc_done is not None else None)
    st.html(tables.leaderboard_html(board, colours), unsafe_allow_javascript=True)  # sort-on-click script
    layout.mark("table")
    layout.paint_first()
    st.caption("Click a column header to sort; hover over it for what the column means.")
    # started when needed, the contributions (a fraction of a second) first: one worker runs them in this order
    contrib = data.contributions(s.dataset, s.ctx.encoder, s.request, s.prep)
    unc = data.uncertainty(s.dataset, s.ctx.encoder, s.request, s.prep)
    unc.value = unc_done  # show what the table shows; a result that lands now triggers a rerun below
    unc_sources = unc_done.sources if unc_done is not None else None

    top = res.sources.iloc[0]
    c1, c2, c3, c4 = head.columns(4)
    c1.metric("Top source", str(top["source"]), help="Highest ECI_sem for the current settings.")
    c2.metric("ECI_sem", f"{top['eci_sem']:.4g}", help=COLUMN_HELP["eci_sem"])
    if len(res.sources) > 1:
        second = str(res.sources.iloc[1]["source"])
        p = unc.value.pairwise.at[str(top["source"]), second] if unc.value is not None else None
        c3.metric(f"P({top['source']} > {second})", "…" if p is None else f"{p:.2f}",
                  help="Share of bootstrap resamples (over queries) in which the top source scores above the "
                       "second. '…' while the bootstrap runs.")
    c4.metric("Classic ECI leader", str(res.sources.sort_values("eci_v1", ascending=False).iloc[0]["source"]),
              help=COLUMN_HELP["eci_v1"])

    for p, what in ((contrib, "The term contributions"), (unc, "The 95% intervals, P(A > B) and rank stability")):
        if p.error:
            st.error(f"{what} could not be computed for these settings — {md_escape(p.error)}",
                     icon=":material/error:")
    # submitted in this order (one worker); a failed job is not waited for
    pending = tuple(p.kind for p in (contrib, unc) if p.value is None and not p.error)
    if pending:
        wait_for(s, pending, res.config.bootstrap, res.config.stability_trials)

    d1, d2, d3, d4 = st.columns(4)
    contrib_sources = contrib.value.sources if contrib.value is not None else None
    d1.download_button("Table (CSV)", tables.csv_table(res.sources, unc_sources, contrib_sources).to_csv(index=False),
                       file_name="sources.csv", mime="text/csv", icon=":material/download:", width="stretch")
    bars = figures.eci_bars(res.sources, colours, unc_sources)
    download_html(d2, "ECI_sem (HTML)", bars, "ECI_sem by source", "eci_sem.html")
    left, right = st.columns(2, gap="large")
    left.plotly_chart(bars, width="stretch", config=PLOT_CONFIG, theme=None)
    if contrib.value is not None:
        fig = figures.contributions(contrib.value.sources)
        download_html(d3, "Contributions (HTML)", fig, "Shapley contributions", "contributions.html")
        right.plotly_chart(fig, width="stretch", config=PLOT_CONFIG, theme=None)
        right.caption("log ECI_sem = φ_c + φ_h + φ_ρ + φ_div exactly (Shapley values over the four parts, each "
                      "switched off by exponent 0 or κ → 0), plus the base v(∅) when the FN penalty φ > 0 (the "
                      "false-negative discount; also any zero residuals). Bars left of 0 pull a score down.")
    else:
        d3.button("Contributions (HTML)", disabled=True, icon=":material/download:", width="stretch")
        right.markdown("**Why each score: term contributions**")
        right.info("Computing the exact Shapley contributions (16 evaluations per source)…",
                   icon=":material/hourglass_top:")

    if contrib.value is not None:
        show_fn_what_if(contrib.value.sources, res.config.fn_penalty, judged(s))

    if unc.value is not None and len(res.sources) > 1:
        shown = set(unc.value.pairwise.index)  # the best-ranked PAIRWISE_MAX_SOURCES when there are more
        order = [s for s in res.sources["source"] if s in shown]
        heat = figures.pairwise_heatmap(unc.value.pairwise.loc[order, order])
        download_html(d4, "P(A > B) (HTML)", heat, "P(A > B)", "pairwise.html")
        h1, h2 = st.columns([3, 2], gap="large")
        h1.plotly_chart(heat, width="stretch", config=PLOT_CONFIG, theme=None)
        h2.markdown("**Reading the map**")
        h2.caption("Each cell is the share of bootstrap resamples of the queries in which the row source scores "
                   "above the column source. Near 1 or 0: a clear order; near 0.5: the data cannot tell them apart.")
        h2.markdown("**Rank stability**")
        h2.caption(f"The badge in the table is the share of {res.config.stability_trials} jittered settings (τ and "
                   "each exponent multiplied by a factor in 0.5–1.5) under which the source keeps its rank. "
                   "Stable ≥ 80%, shaky ≥ 50%, fragile below.")
    else:
        d4.button("P(A > B) (HTML)", disabled=True, icon=":material/download:", width="stretch",
                  help="Available once the bootstrap is done.")


main()
