"""Why this rank: two sources compared term by term, their term distributions, and the triplets that matter."""
from __future__ import annotations

import streamlit as st

from ecisem_core.metric.explain import term_differences
from ecisem_core.curation.highlight import highlight_triplet
from ecisem_core.report import figures
from ecisem_core.ui import data, explain, layout
from ecisem_core.ui.state import K

SHOW = 5  # triplets listed per group


def pick_pair(names: list[str]) -> tuple[str, str]:
    """Two source selectors (defaults: ranks 1 and 2); invalid values from a link fall back to them."""
    for key, default in ((K.WHY_A, names[0]), (K.WHY_B, names[1] if len(names) > 1 else names[0])):
        if st.session_state.get(key) not in names:
            st.session_state[key] = default
    c1, c2 = st.columns(2)
    a = c1.selectbox("Source A", names, key=K.WHY_A, persist_state="session")
    b = c2.selectbox("Source B", names, key=K.WHY_B, persist_state="session")
    return a, b


def card(row, idf: dict, colour: str) -> str:
    h = highlight_triplet(row["query"], row["positive"], row["negative"], idf)
    pills = [f'<span class="eci-pill">w {row["w"]:.3g}</span>', f'<span class="eci-pill">c {row["c"]:.2f}</span>',
             f'<span class="eci-pill">h {row["h"]:.2f}</span>', f'<span class="eci-pill">ρ {row["rho"]:.2f}</span>',
             f'<span class="eci-pill">adds {row["contribution"]:.2e}</span>']
    if row["fn_flag"]:
        pills.append('<span class="eci-pill warn">flagged FN</span>')
    if row["cut"] != "none":
        pills.append(f'<span class="eci-pill">cut by {row["cut"]}: {row["meaning"]}</span>')
    return (f'<div class="eci-card" style="border-left: 4px solid {colour}"><div class="meta">{"".join(pills)}</div>'
            f'<div class="lbl">query</div><div class="txt">{h["query"]}</div>'
            f'<div class="lbl">positive</div><div class="txt">{h["positive"]}</div>'
            f'<div class="lbl">negative</div><div class="txt">{h["negative"]}</div></div>')


def triplet_lists(name: str, part, idf: dict, colour: str) -> None:
    top = part.sort_values("contribution", ascending=False).head(SHOW)
    cut = part.sort_values("w", ascending=True).head(SHOW)
    t1, t2 = st.tabs([f"Adds most to {name}", f"Weight cut most in {name}"])
    with t1:
        st.caption("Largest leave-one-out contribution to ECI_sem: a high weight and a residual direction the "
                   "other sampled triplets do not already cover.")
        st.html("".join(card(r, idf, colour) for _, r in top.iterrows()))
    with t2:
        st.caption("Smallest weight w = c^α·h^β·ρ^γ, with the term that cuts it most. Highlighted: words the "
                   "negative shares with the query or positive (darker = rarer, by IDF).")
        st.html("".join(card(r, idf, colour) for _, r in cut.iterrows()))


def main() -> None:
    s = layout.scored_page("Why this rank")
    if s is None:
        return
    names = list(s.result.sources["source"])
    if len(names) < 2:
        st.info("Select at least two sources to compare.", icon=":material/compare_arrows:")
        return
    a, b = pick_pair(names)
    if a == b:
        st.info("Pick two different sources.", icon=":material/compare_arrows:")
        return
    src = s.result.sources.set_index("source")
    with st.spinner("Computing the exact Shapley contributions…"):
        contrib = data.contributions(s.dataset, s.ctx.encoder, s.request, s.prep, wait=True).value
    diff = term_differences(contrib.sources, a, b)
    colours = figures.source_colours(s.dataset.sources)

    m1, m2, m3 = st.columns(3)
    m1.metric(f"ECI_sem {a}", f"{src.at[a, 'eci_sem']:.4g}", help=f"rank {int(src.at[a, 'rank'])}")
    m2.metric(f"ECI_sem {b}", f"{src.at[b, 'eci_sem']:.4g}", help=f"rank {int(src.at[b, 'rank'])}")
    total = float(diff.loc[diff["term"] == "total", "delta"].iloc[0])
    m3.metric("Ratio A / B", f"{src.at[a, 'eci_sem'] / src.at[b, 'eci_sem']:.3g}×",
              help=f"Δ log ECI_sem = {total:+.3f}")

    left, right = st.columns([3, 2], gap="large")
    wf = figures.waterfall(diff, a, b)
    left.plotly_chart(wf, width="stretch", config={"displaylogo": False}, theme=None)
    with right:
        st.markdown("**Term by term**")
        view = diff[["label", "a", "b", "delta"]].set_axis(["part", a, b, "Δ (A − B)"], axis=1)
        st.dataframe(view, hide_index=True,
                     column_config={a: st.column_config.NumberColumn(format="%.3f"),
                                    b: st.column_config.NumberColumn(format="%.3f"),
                                    "Δ (A − B)": st.column_config.NumberColumn(format="%+.3f")})
        st.caption("Each source's log ECI_sem is split exactly into Shapley contributions of target consistency "
                   "(α), semantic locality (β), lexical residuality (γ) and diversity (κ); the bars are their "
                   "differences and add up to Δ log ECI_sem.")
        st.download_button("Waterfall (HTML)", lambda: figures.to_html(wf, f"{a} vs {b}"), file_name="waterfall.html",
                           mime="text/html", icon=":material/download:")

    parts = {n: explain.sample_terms(s.dataset, s.ctx.encoder, s.request, s.prep, s.result, n) for n in (a, b)}
    st.subheader("Term distributions", divider="gray")
    kind = st.segmented_control("Show as", ["violin", "ecdf"], default="violin", key="why_dist_kind",
                                format_func={"violin": "Violins", "ecdf": "ECDF"}.get, required=True,
                                label_visibility="collapsed")
    st.plotly_chart(figures.term_distributions(parts, colours, kind or "violin"), width="stretch",
                    config={"displaylogo": False}, theme=None)
    st.caption(f"Over the sampled triplets of each source ({len(parts[a]):,} and {len(parts[b]):,}).")

    st.subheader("Triplets that add or remove the most weight", divider="gray")
    idf = explain.idf(s.dataset)
    c1, c2 = st.columns(2, gap="large")
    with c1:
        triplet_lists(a, parts[a], idf, colours[a])
    with c2:
        triplet_lists(b, parts[b], idf, colours[b])


main()
