"""False negatives: per source, the triplets whose negative is likely relevant (ranked by FN score, with the
reasons) and junk negatives; send a selection to an annotation batch; exports; verdict import; the learned
scorer and a cleaned training file; baselines on labelled data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from ecisem_core.errors import InputError
from ecisem_core.curation import active
from ecisem_core.curation.fn_model import N_MIN, RESAMPLE_MODES
from ecisem_core.report import figures
from ecisem_core.ui import curate, data, explain, layout
from ecisem_core.ui.state import K
from ecisem_core.ui.text import md_escape

SELF = "views/false_negatives.py"
ANNOTATE = "views/annotate.py"
TOP_N = 50          # default "top N of the list" for a batch
CARDS = 3           # selected triplets shown as cards
RANK_LABELS = {"fn_score": "Rules", "fn_model": "Learned"}
CLEAN_LABELS = {"drop": "Drop likely false negatives", "weight": "Down-weight them (1 − p)"}


@st.cache_resource(max_entries=3, show_spinner=False)
def flag_table(key: tuple, _prep) -> pd.DataFrame:
    """Triplets + similarities + flags of a prepared dataset (key: dataset fingerprint, encoder)."""
    return curate.flag_table(_prep.triplets, _prep.s_qp, _prep.s_qn, _prep.s_pn, _prep.flags)


@st.cache_resource(max_entries=4, show_spinner=False)
def history(key: tuple, _table: pd.DataFrame, _verdicts: pd.DataFrame) -> pd.DataFrame:
    """The learned scorer's CV AUC as the verdicts accumulated (key: dataset, encoder, verdicts)."""
    return curate.cv_auc_history(_table, _verdicts)


@st.cache_resource(max_entries=4, show_spinner=False)
def learned(key: tuple, _table: pd.DataFrame, _verdicts: pd.DataFrame):
    """(model, P(false negative) per row) for a dataset and a verdict set (key: dataset, encoder, verdicts)."""
    model = curate.train_from_verdicts(_table, _verdicts)
    return model, model.predict(_table)


def column_config() -> dict:
    text, num = st.column_config.TextColumn, st.column_config.NumberColumn
    return {
        "fn_score": st.column_config.ProgressColumn("FN score", format="%.2f", min_value=0.0, max_value=1.0,
                                                    help="How likely the negative is relevant (rules + encoder; "
                                                         "formula in curation/fn_score.py). Fixed: sliders don't "
                                                         "change it."),
        "fn_model": st.column_config.ProgressColumn("learned P(FN)", format="%.2f", min_value=0.0, max_value=1.0,
                                                    help="The learned scorer's probability (trained from verdicts)."),
        "source": text("source"),
        "reasons": st.column_config.ListColumn("reasons", help="Every rule that fired (numbers in the exports)."),
        "query": text("query", width="medium"),
        "negative": text("negative", width="large"),
        "positive": text("positive", width="medium"),
        "s_qp": num("s_qp", format="%.3f", help="cos(query, positive)"),
        "s_qn": num("s_qn", format="%.3f", help="cos(query, negative)"),
        "s_pn": num("s_pn", format="%.3f", help="cos(positive, negative)"),
        "label": text("label", help="Ground-truth fn_label from the file (planted in the demo)."),
        "query_id": text("query_id"), "negative_id": text("negative_id"),
    }


DEFAULTS = {K.FN_RANK: "fn_score", K.FN_MIN_SCORE: 0.0, K.FN_JUNK: False, K.FN_SEND: "queue", K.FN_TOP_N: TOP_N,
            K.FN_QUEUE_N: active.BATCH_SIZE,
            K.FN_CLEAN_MODE: "drop", K.FN_CLEAN_THRESHOLD: 0.5, K.FN_CLEAN_FORMAT: "jsonl"}


def filters(options: list[str], reasons: list[str], has_model: bool) -> dict:
    """The filter row; returns the chosen values."""
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
    for key, allowed in ((K.FN_SOURCES, options), (K.FN_REASONS, reasons)):
        if any(v not in allowed for v in st.session_state.get(key) or []):
            st.session_state[key] = [v for v in st.session_state[key] if v in allowed]
    if st.session_state.get(K.FN_RANK) == "fn_model" and not has_model:
        st.session_state[K.FN_RANK] = "fn_score"
    c1, c2, c3, c4 = st.columns([3, 3, 2, 3], vertical_alignment="bottom")  # room for "Rules | Learned" at 1024 px
    sources = c1.multiselect("Sources", options, key=K.FN_SOURCES, placeholder="all sources",
                             persist_state="session")
    kinds = c2.multiselect("Reasons", reasons, key=K.FN_REASONS, placeholder="any reason", persist_state="session",
                           help="Show rows where any of these reasons fired.")
    min_score = c3.slider("Min FN score", 0.0, 1.0, step=0.05, key=K.FN_MIN_SCORE, persist_state="session",
                          help="Hide flagged rows scored below this (by the ranking chosen on the right).")
    with c4:
        rank = st.segmented_control("Rank by", list(RANK_LABELS), format_func=RANK_LABELS.get, key=K.FN_RANK,
                                    required=True, persist_state="session", disabled=not has_model,
                                    help="Rules: the FN score. Learned: the scorer trained from the annotators' "
                                         "verdicts (available once it is trained: tab “Learned scorer” below).")
        junk = st.toggle("Show junk", key=K.FN_JUNK, persist_state="session",
                         help="Degenerate negatives (empty, very short, boilerplate, LLM preambles/refusals) in their "
                              "own list. They are dropped from cleaned training files either way.")
    return dict(sources=sources or options, reasons=kinds, min_score=min_score, junk=junk,
                rank_by=rank or "fn_score")


def reset_selection_if_filters_changed(chosen: dict) -> None:
    """A new filter or ranking re-orders the list: clear the row selection (positions would name other rows)."""
    sig = repr(sorted(chosen.items()))
    if st.session_state.get(K.FN_FILTER_SIG) != sig:
        st.session_state[K.FN_FILTER_SIG] = sig
        st.session_state[K.FN_TABLE] = {"selection": {"rows": [], "columns": []}}


def follow_selection(picked: list[int]) -> None:
    """Newly selected rows switch "Send" to them; an emptied selection switches it back to the review queue."""
    before = st.session_state.get(K.FN_PICKED)
    if picked != before:
        st.session_state[K.FN_PICKED] = picked
        if picked:
            st.session_state[K.FN_SEND] = "selected"
        elif before:
            st.session_state[K.FN_SEND] = DEFAULTS[K.FN_SEND]


def cards(rows: pd.DataFrame, idf: dict, colours: dict[str, str]) -> None:
    html = []
    for r in rows.head(CARDS).to_dict("records"):
        pills = [(f"{r['source']}", False), (f"FN score {r['fn_score']:.2f}", r["fn_flag"])]
        if "fn_model" in r:
            pills.append((f"learned {r['fn_model']:.2f}", r["fn_model"] >= 0.5))
        if "fn_label" in r and pd.notna(r["fn_label"]):
            pills.append((f"label: {curate.LABEL_TEXT[float(r['fn_label'])]}", False))
        pills += curate.reason_pills(r["fn_reason_codes"])
        html.append(curate.triplet_card(r["query"], r["positive"], r["negative"], idf, pills,
                                        colours.get(str(r["source"]))))
    st.html("".join(html))


SEND_LABELS = {"queue": "Review queue (learns fastest)", "top": "Top of the list"}


def queue_rows(store, table: pd.DataFrame, verdicts: pd.DataFrame, probs: np.ndarray | None, k: int) -> pd.DataFrame:
    """The review queue's next ``k`` items among the listed sources' triplets (curation/active.py), leaving out
    every item already judged or already in a batch."""
    judged = active.judged_keys(verdicts) | curate.queued_keys(store)
    return active.next_items(table, probs, judged, k=k, seed=len(verdicts))


def send_tab(store, rows: pd.DataFrame, selected: pd.DataFrame, settings: dict, scope: pd.DataFrame,
             verdicts: pd.DataFrame, probs: np.ndarray | None) -> None:
    n_sel = len(selected)
    n_pairs = len(curate.unique_pairs(rows))
    st.session_state[K.FN_TOP_N] = min(max(1, int(st.session_state.get(K.FN_TOP_N) or TOP_N)), max(1, n_pairs))
    c1, c2 = st.columns([3, 2], vertical_alignment="bottom")
    labels = {**SEND_LABELS, "selected": f"Selected rows ({n_sel})"}
    what = c1.segmented_control("Send", ["queue", "top", "selected"], key=K.FN_SEND, required=True,
                                format_func=labels.get,
                                help="Review queue: the items the learned scorer learns most from (before it exists, "
                                     "the top of the FN score and a spread over its range; after, the items it is "
                                     "least sure of, mixed with its top-scored and random ones). The top of the "
                                     "list alone teaches a biased scorer (README: the review queue's learning "
                                     "curve).")
    if what == "queue":
        k = int(c2.number_input("Items in the batch", min_value=1, max_value=500, step=10, key=K.FN_QUEUE_N))
        chosen = queue_rows(store, scope, verdicts, probs, k)
        why = chosen["queue_reason"].map(active.REASONS).value_counts()
        st.caption(f"{len(chosen)} item(s) not yet judged nor in a batch, chosen "
                   + ("by the learned scorer" if probs is not None else "before the learned scorer exists")
                   + ": " + ", ".join(f"{n} {md_escape(r)}" for r, n in why.items()) + ".")
    else:
        top_n = c2.number_input("How many from the top", min_value=1, max_value=max(1, n_pairs), step=10,
                                key=K.FN_TOP_N, disabled=what != "top",
                                help="Distinct query–negative pairs, in list order.")
        chosen = curate.unique_pairs(selected) if what == "selected" else curate.unique_pairs(rows).head(int(top_n))
    st.text_input("Batch name", key=K.FN_BATCH_NAME, placeholder="optional",
                  help="Empty: “<source(s)> · <n> triplets · <date and time>”.")
    st.text_input("Annotators (optional, comma-separated): one personal link each", key=K.FN_ANNOTATORS,
                  placeholder="e.g. alice, bob")
    if st.button(f"Send {len(chosen)} triplet(s) to a new annotation batch", type="primary",
                 icon=":material/send:", disabled=chosen.empty,
                 help="A query–negative pair mined by several sources becomes one item (one verdict counts for "
                      "all of them)."):
        try:
            bid = curate.send_to_batch(store, chosen, st.session_state.get(K.FN_BATCH_NAME) or "",
                                       {**settings, "send": what})
        except InputError as exc:
            st.error(md_escape(exc), icon=":material/error:")
        else:
            st.session_state[K.FN_LAST_BATCH] = bid
    if chosen.empty:
        st.caption("Select rows in the list (click the boxes on the left) or choose “Top of the list”.")
    last = st.session_state.get(K.FN_LAST_BATCH)
    batches = store.list_batches()
    if last is not None and last in set(batches["id"]):
        n = int(batches.loc[batches["id"] == last, "n_items"].iloc[0])
        base = curate.app_base(st.context.url, curate.page_path(SELF))
        st.success(f"Batch #{last} created with {n} triplets. Send the annotators this link:",
                   icon=":material/check_circle:")
        names = [a.strip() for a in (st.session_state.get(K.FN_ANNOTATORS) or "").split(",") if a.strip()]
        links = [curate.batch_link(base, curate.page_path(ANNOTATE), last, a) for a in names or [None]]
        st.code("\n".join(links), language=None, wrap_lines=True)
        if names:
            st.caption("Each personal link opens the Annotate page alone — no settings, no other verdicts, no "
                       "flagger's evidence. To split the items among annotators with an overlap, or to write "
                       "guidelines, open the batch's Researcher view on the Annotate page.")
        st.page_link(ANNOTATE, label=f"Open batch #{last} on the Annotate page", icon=":material/rate_review:",
                     query_params={"batch": str(last)})
    if not batches.empty:
        st.markdown("**Batches in the store**")
        base = curate.app_base(st.context.url, curate.page_path(SELF))
        view = batches.assign(link=[curate.batch_link(base, curate.page_path(ANNOTATE), b) for b in batches["id"]],
                              created=curate.short_time(batches["created"]))
        st.dataframe(view[["id", "name", "n_items", "n_annotators", "n_verdicts", "created", "link"]]
                     .sort_values("id", ascending=False), hide_index=True, width="stretch", column_config={
                         "id": st.column_config.NumberColumn("batch", format="#%d", width="small"),
                         "n_items": st.column_config.NumberColumn("items"),
                         "n_annotators": st.column_config.NumberColumn("annotators"),
                         "n_verdicts": st.column_config.NumberColumn("verdicts"),
                         "created": st.column_config.TextColumn("created (UTC)"),
                         "link": st.column_config.LinkColumn("annotate", display_text="open")})
    st.caption(f"Annotation store: `{store.path}` (set {curate.ANNOTATIONS_ENV} to use another file).")


def export_tab(rows: pd.DataFrame) -> None:
    st.caption(f"The {len(rows):,} rows of the list as filtered above (junk included when shown), with ids, scores, "
               "reasons and similarities. Label Studio: import the tasks and paste the labeling config; Argilla 2.x: "
               "create the dataset from the settings, then log the records.")
    reasons = st.toggle("Show annotators why each triplet was flagged", key=K.FN_EXPORT_REASONS,
                        help="Label Studio and Argilla files: add the reasons, the FN score and the suggested "
                             "verdict. Off by default — annotators who see the flagger's evidence lean towards it. "
                             "The CSV and JSONL lists always have them.")
    groups = {"List": ("csv", "jsonl"), "Label Studio": ("label_studio", "label_studio_config"),
              "Argilla": ("argilla", "argilla_settings")}
    for col, (title, kinds) in zip(st.columns(3), groups.items()):
        col.markdown(f"**{title}**")
        for kind in kinds:
            dl = curate.export_download(rows, kind, with_reasons=bool(reasons))
            col.download_button(curate.EXPORT_KINDS[kind][0], dl.make, file_name=dl.file_name, mime=dl.mime,
                                icon=":material/download:", width="stretch", disabled=rows.empty,
                                on_click="ignore")


def import_tab(store, table: pd.DataFrame) -> None:
    st.caption("A CSV with a header row: `verdict` (false_negative / true_negative / unsure, or fn / tn), "
               "`annotator`, optional `comment`, and either `item_id` (items of an existing batch) or `query_id` + "
               "`negative_id` (triplets of the current dataset). The whole file is checked first: one bad row and "
               "nothing is stored.")
    batches = store.list_batches()
    options = {0: "A new batch (rows matched by query_id + negative_id)",
               **curate.batch_options(batches)}
    if st.session_state.get(K.FN_IMPORT_INTO) not in options:
        st.session_state[K.FN_IMPORT_INTO] = 0
    c1, c2 = st.columns([3, 2])
    up = c1.file_uploader("Verdicts (CSV)", type=["csv"], key=K.FN_IMPORT)
    into = c2.selectbox("Import into", list(options), format_func=options.get, key=K.FN_IMPORT_INTO)
    default = c2.text_input("Annotator (when the file has no annotator column)", key=K.FN_IMPORT_ANNOTATOR)
    if st.button("Import verdicts", icon=":material/upload:", disabled=up is None):
        try:
            verdicts = curate.read_uploaded_verdicts(up.getvalue(), up.name, default or None)
            done = curate.import_verdicts(store, verdicts, into or None, table)
        except InputError as exc:
            st.error(f"Nothing imported — {md_escape(exc)}", icon=":material/error:")
        else:
            where = "a new batch" if done.created else "batch"
            st.success(f"Imported {done.n_verdicts} verdict(s) from {md_escape(up.name)} into {md_escape(where)} #{done.batch_id}.",
                       icon=":material/check_circle:")


def model_tab(table: pd.DataFrame, model, counts: tuple[int, int], probs: np.ndarray | None,
              hist: pd.DataFrame | None = None) -> None:
    n_fn, n_tn = counts
    if model is None:
        st.info(f"The learned scorer trains itself once the annotators' verdicts on this dataset include at least "
                f"{N_MIN} false negatives and {N_MIN} true negatives (now {n_fn} and {n_tn}). Until then the "
                "cleaned training file uses the rule-based FN score.", icon=":material/model_training:")
    else:
        m1, m2, m3 = st.columns(3)
        m1.metric("Cross-validated AUC", f"{model.cv_auc:.3f}", help=f"± {model.cv_auc_std:.3f} over "
                  f"{model.folds} folds grouped by query: ROC AUC of the learned P(FN) on held-out verdicts.")
        m2.metric("Rule FN score AUC (same items)", f"{model.baseline_auc:.3f}",
                  help="The hand-set fn_score on the same judged items (in-sample: it was not fitted).")
        m3.metric("Trained on", f"{model.n_false_negative} FN · {model.n_true_negative} TN",
                  help="Triplets labelled by the consensus of the current verdicts of every batch, matched by "
                       "query_id + negative_id (a verdict on a pair labels it in every source that mined it).")
        if hist is not None and len(hist):
            st.plotly_chart(figures.learning_history(hist, model.baseline_auc), width="stretch",
                            config={"displaylogo": False}, theme=None)
            st.caption("Each point: the scorer trained on the first n verdicts given (in the order given), "
                       "cross-validated by query. Verdicts from the review queue are the items it was least sure "
                       "of, so this AUC is a pessimistic estimate of how it ranks the rest.")
        coef = pd.DataFrame({"feature": list(model.coefficients), "weight": list(model.coefficients.values())})
        with st.expander("Model weights (logistic regression on standardised features)"):
            st.dataframe(coef.sort_values("weight", key=np.abs, ascending=False), hide_index=True,
                         column_config={"weight": st.column_config.NumberColumn(format="%+.3f")})
    st.markdown("**Cleaned training file**")
    c1, c2, c3 = st.columns([2, 2, 1], vertical_alignment="bottom")
    mode = c1.segmented_control("Likely false negatives", list(RESAMPLE_MODES), format_func=CLEAN_LABELS.get,
                                key=K.FN_CLEAN_MODE, required=True)
    threshold = c2.slider("Threshold p", 0.05, 0.95, step=0.05, key=K.FN_CLEAN_THRESHOLD,
                          help="Rows with P(false negative) at or above this are dropped / down-weighted.")
    fmt = c3.selectbox("Format", ["jsonl", "csv"], key=K.FN_CLEAN_FORMAT)
    p = probs if probs is not None else table["fn_score"].to_numpy(dtype=np.float64)
    dl, n = curate.training_download(table, p, mode or "drop", float(threshold), fmt)
    by = "the learned scorer" if probs is not None else "the rule-based FN score"
    st.caption(f"{n:,} of {len(table):,} triplets (sources listed above) kept; probabilities from {by}; junk "
               "always dropped.")
    st.download_button("Cleaned training file", dl.make, file_name=dl.file_name, mime=dl.mime, type="primary",
                       icon=":material/download:", on_click="ignore")


def baselines_tab(table: pd.DataFrame, sources: list[str]) -> None:
    b = curate.baselines(table, sources)
    if b is None:
        st.info("Baselines need ground-truth labels: a `fn_label` column (1 = false negative, 0 = true negative) "
                "in the data. The demo has planted false negatives.", icon=":material/rule:")
        return
    st.caption(f"On the {int(b['n'].iloc[0]):,} labelled triplets ({int(b['n_fn'].iloc[0]):,} false negatives) of "
               "the listed sources: ROC AUC of each score, precision among its top k (k = number of false "
               "negatives), and precision / recall of its flag (s_qn is a ranking only: no flag).")
    st.dataframe(b[["method", "auc", "precision_at_k", "k", "flag_precision", "flag_recall"]], hide_index=True,
                 column_config={"auc": st.column_config.NumberColumn("ROC AUC", format="%.3f"),
                                "precision_at_k": st.column_config.NumberColumn("precision@k", format="%.3f"),
                                "flag_precision": st.column_config.NumberColumn("flag precision", format="%.3f"),
                                "flag_recall": st.column_config.NumberColumn("flag recall", format="%.3f")})


def main() -> None:
    s = layout.scored_page("False negatives")
    if s is None:
        return
    table = flag_table(data.prepared_key(s.dataset, s.ctx.encoder), s.prep)
    options = list(s.result.sources["source"])
    store, store_error = curate.try_open_store()
    if store_error:
        st.warning(f"Batches, verdict import and the learned scorer are unavailable: {md_escape(store_error)}.",
                   icon=":material/database:")
    verdicts = curate.all_verdicts(store) if store is not None else curate.EMPTY_VERDICTS
    counts = curate.label_counts(table, verdicts)
    model = probs = None
    if min(counts) >= N_MIN:
        key = (*data.prepared_key(s.dataset, s.ctx.encoder), curate.verdicts_fingerprint(verdicts))
        model, probs = learned(key, table, verdicts)
        table = table.assign(fn_model=probs)

    scope = table[table["source"].isin(options)]
    summary = curate.per_source_summary(scope)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Likely false negatives", f"{int(summary['flagged'].sum()):,}",
              help="Triplets where a false-negative reason fired (fixed flagger settings).")
    m2.metric("Junk negatives", f"{int(summary['junk'].sum()):,}")
    if "labelled_fn" in summary.columns:
        found, total = int(summary["labelled_fn_flagged"].sum()), int(summary["labelled_fn"].sum())
        m3.metric("Labelled FNs flagged", f"{found} / {total}", help="Ground-truth fn_label = 1 rows that are flagged.")
    m4.metric("Verdicts in the store", f"{len(verdicts):,}", help=f"{counts[0]} FN / {counts[1]} TN consensus "
              "labels on this dataset's triplets.")

    chosen = filters(options, curate.reasons_present(scope), model is not None)
    rows = curate.candidates(table, sources=chosen["sources"], reasons=chosen["reasons"],
                             min_score=chosen["min_score"], junk=chosen["junk"], rank_by=chosen["rank_by"])
    fn_rows = rows[rows["kind"] == "false negative?"]
    reset_selection_if_filters_changed(chosen)
    by = "FN score (rules)" if chosen["rank_by"] == "fn_score" else "the learned scorer"
    st.markdown(f"**{len(fn_rows):,} likely false negatives** · ranked by {by} · tick rows to select them")
    event = st.dataframe(curate.display_frame(fn_rows), key=K.FN_TABLE, on_select="rerun",
                         selection_mode="multi-row", hide_index=True, width="stretch", height=420,
                         column_config=column_config())
    picked = [i for i in (event.selection.rows if event else []) if i < len(fn_rows)]
    selected = fn_rows.iloc[picked]
    follow_selection(picked)
    if chosen["junk"]:
        junk_rows = rows[rows["kind"] == "junk"]
        st.markdown(f"**{len(junk_rows):,} junk negatives** (degenerate text; not false negatives)")
        if junk_rows.empty:
            st.caption("None in the listed sources.")
        else:
            st.dataframe(curate.display_frame(junk_rows).drop(columns=["fn_score", "fn_model"], errors="ignore"),
                         hide_index=True, width="stretch", height=240, column_config=column_config())
    if len(selected):
        st.markdown(f"**Selected** ({len(selected)}; the first {min(CARDS, len(selected))} shown, shared words "
                    "highlighted — darker = rarer)")
        cards(selected, explain.idf(s.dataset), figures.source_colours(s.dataset.sources))

    tabs = st.tabs(["Send to annotation", "Export", "Import verdicts", "Learned scorer", "Baselines",
                    "Per source"])
    settings = {"dataset": s.dataset.id, "encoder": s.ctx.encoder, **{k: v for k, v in chosen.items()
                                                                      if k != "sources"},
                "sources": list(chosen["sources"])}
    with tabs[0]:
        if store is None:
            st.error(store_error, icon=":material/database:")
        else:
            send_tab(store, fn_rows, selected, settings, scope, verdicts,
                     None if probs is None else scope["fn_model"].to_numpy())
    with tabs[1]:
        export_tab(rows)
    with tabs[2]:
        if store is None:
            st.error(store_error, icon=":material/database:")
        else:
            import_tab(store, table)
    with tabs[3]:
        hist = None if model is None else history((*data.prepared_key(s.dataset, s.ctx.encoder),
                                                   curate.verdicts_fingerprint(verdicts)), table, verdicts)
        model_tab(scope, model, counts, None if probs is None else scope["fn_model"].to_numpy(), hist)
    with tabs[4]:
        baselines_tab(table, list(chosen["sources"]))
    with tabs[5]:
        st.dataframe(summary, hide_index=True, width="stretch", column_config={
            "flagged_rate": st.column_config.NumberColumn("FN rate", format="percent"),
            "junk_rate": st.column_config.NumberColumn("junk rate", format="percent"),
            "flagged": st.column_config.NumberColumn("likely false negatives"),
            "labelled_fn": st.column_config.NumberColumn("labelled FNs"),
            "labelled_fn_flagged": st.column_config.NumberColumn("labelled FNs flagged")})


main()
