"""Compare: two settings — the sidebar's or a named preset — side by side on the same data and sample: both
rankings, each source's move, how far the rankings agree, which terms moved each score, and the settings that
differ."""
from __future__ import annotations

import streamlit as st

from ecisem_core.ui import compare, data, layout, share

A, B = "compare_a", "compare_b"
PARAMS = dict(zip((A, B), share.PAGE_PARAMS["compare"]))  # widget key → its query parameter (ca, cb)
LINKED = "compare_linked"


def _from_link(options: list[str]) -> None:
    """Once per session: the sides named in the link (ca, cb) become the choices."""
    if st.session_state.get(LINKED):
        return
    st.session_state[LINKED] = True
    for key, param in PARAMS.items():
        value = st.query_params.get(param)
        if value in options:
            st.session_state[key] = value


def _to_link() -> None:
    for key, param in PARAMS.items():
        if st.query_params.get(param) != st.session_state.get(key):
            st.query_params[param] = st.session_state.get(key)


def main() -> None:
    s = layout.scored_page("Compare")
    if s is None:
        return
    options = compare.choices()
    _from_link(options)
    c1, c2 = st.columns(2)
    a = c1.selectbox("Settings A", options, key=A, format_func=compare.label)
    b = c2.selectbox("Settings B", options, index=options.index("paper") if "paper" in options else 0, key=B,
                     format_func=compare.label)
    _to_link()
    dim = s.prep.dim
    cfg = {side: compare.config_of(choice, s.request.config, dim) for side, choice in (("A", a), ("B", b))}
    results = {side: data.scores(s.dataset, s.ctx.encoder, data.ScoreRequest(c, s.request.sources), s.prep)
               for side, c in cfg.items()}
    table = compare.compare_table(results["A"].sources, results["B"].sources)
    moved = int(table["A → B"].str.startswith(("↑", "↓")).sum())
    m1, m2 = st.columns(2)
    m1.metric("Kendall τ between the two rankings", f"{compare.agreement(table):+.2f}",
              help="1: the same order; 0: unrelated; −1: reversed.")
    m2.metric("Sources that change rank", f"{moved} of {len(table)}")
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "ECI_sem A": st.column_config.NumberColumn(format="%.4g"),
        "ECI_sem B": st.column_config.NumberColumn(format="%.4g"),
    })

    st.markdown("**Which terms moved each score**")
    with st.spinner("Computing the term contributions under A and B…"):
        contrib = {side: data.contributions(s.dataset, s.ctx.encoder, data.ScoreRequest(c, s.request.sources),
                                            s.prep, wait=True).value for side, c in cfg.items()}
    terms = compare.term_changes(contrib["A"].sources, contrib["B"].sources)
    base = terms.columns[-1]  # Δ v(∅): shown only when the sides differ in it (a different FN penalty φ)
    if not (terms[base].abs() > 1e-9).any():
        terms = terms.drop(columns=base)
    st.dataframe(terms, hide_index=True, width="stretch",
                 column_config={c: st.column_config.NumberColumn(format="%+.3f") for c in terms.columns[1:]})
    st.caption("Shapley contributions of log ECI_sem, as on the leaderboard: under each setting they and the base "
               "v(∅) add up to its log ECI_sem, so the Δ columns add up to Δ log ECI_sem — a source's move, split "
               "among the terms that made it. v(∅) is the false-negative discount (and any zero residuals); it has "
               "a column only when it differs between the sides (a different FN penalty φ).")
    left, right = st.columns([3, 2], gap="large")
    left.markdown("**Settings**")
    left.dataframe(compare.settings_table(cfg["A"], cfg["B"], dim), hide_index=True, width="stretch")
    right.caption("Both sides score the same sampled triplets (N and seed from the sidebar). A preset's κ is the "
                  "same multiple of d it was fitted with. The presets, the data they were fitted on and their "
                  "measured agreement with training: README, the validity study.")

main()
