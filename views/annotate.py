"""Annotate: one triplet of a batch at a time — is the candidate negative a false negative? Verdicts are saved at
once in the annotation store; the researcher view shows progress, agreement (Cohen's κ) and the flagger's
precision, and sets the batch's guidelines and who judges which item (with an overlap for agreement).

An annotator's personal link ``…/annotate?batch=<id>&annotator=<name>&role=annotator`` opens this page alone
(:mod:`ecisem_core.ui.roles`): the guidelines, the item, the keys and the progress — no settings sidebar, no
other batch, no researcher view, no flagger's evidence. The researcher's ``…/annotate?batch=<id>`` (or picking a
batch and typing a name) shows everything. Keyboard:
F / T / U answer false negative / true negative / unsure, B goes back one item (they do nothing while the cursor is
in the comment box: there, type, then Tab to a button and press Enter or Space)."""
from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from ecisem_core.curation.assignment import (OVERLAP_DEFAULT, PER_SHARED_DEFAULT, annotator_names, assign_items,
                                             load_table)
from ecisem_core.curation.verdicts import VERDICTS
from ecisem_core.errors import InputError
from ecisem_core.ui import curate, layout, roles, sidebar
from ecisem_core.ui.state import K
from ecisem_core.ui.text import md_escape

FN_PAGE = "views/false_negatives.py"
SELF = "views/annotate.py"
BUTTONS = {  # verdict → (label, shortcut, icon, type)
    "false_negative": ("False negative — it answers the query", "F", ":material/check_circle:", "primary"),
    "true_negative": ("True negative — it does not", "T", ":material/cancel:", "secondary"),
    "unsure": ("Unsure", "U", ":material/help:", "secondary"),
}


@st.cache_resource(max_entries=8, show_spinner=False)
def batch_idf(path: str, batch_id: int, n_items: int, data_key: str | None, _dataset) -> dict[str, float]:
    """IDF over the batch's passages and the current dataset's (key: store, batch, its size — items are only ever
    added — and the dataset's fingerprint)."""
    t = _dataset.table if _dataset is not None else None
    passages = [] if t is None else pd.concat([t["positive"], t["negative"]]).astype(str).unique()
    return curate.batch_idf(curate.open_store(path).items(batch_id), passages)


def sync_from_url() -> None:
    """A new link (?batch=…&annotator=…) sets the pickers; otherwise the pickers are left as the user set them."""
    url = (st.query_params.get("batch"), st.query_params.get("annotator"))
    if url == st.session_state.get(K.ANN_URL):
        return
    st.session_state[K.ANN_URL] = url
    batch = curate.parse_batch_id(url[0])
    if batch is not None:
        st.session_state[K.ANN_BATCH] = batch
        st.session_state[K.ANN_REVISIT] = None
    if url[1] is not None:
        st.session_state[K.ANN_NAME] = url[1].strip()


def sync_to_url(batch: int | None, name: str) -> None:
    """The pickers → the URL (so the address bar is the annotator's own link)."""
    want = {"batch": str(batch) if batch is not None else None, "annotator": name or None}
    for key, value in want.items():
        if value is None:
            if key in st.query_params:
                del st.query_params[key]
        elif st.query_params.get(key) != value:
            st.query_params[key] = value
    st.session_state[K.ANN_URL] = (want["batch"], want["annotator"])


def record(batch: int, item_id: int, name: str, verdict: str, comment_key: str) -> None:
    """Callback of the verdict buttons: append the verdict (committed on return), move on."""
    store = curate.open_store()
    comment = (st.session_state.get(comment_key) or "").strip()
    try:
        store.record_verdict(item_id, name, verdict, comment)
    except InputError as exc:
        st.session_state[K.ANN_SAVED] = ("error", str(exc))
        return
    st.session_state[K.ANN_SAVED] = ("ok", f"Saved: {curate.VERDICT_WORDS[verdict]}"
                                     + (" (with comment)" if comment else ""))
    st.session_state[K.ANN_REVISIT] = None


def go_back(batch: int, name: str, position: int | None) -> None:
    """Callback: show the item answered before ``position`` (the last answered one when ``None``)."""
    prev = curate.previous_item(curate.open_store(), batch, name, position)
    st.session_state[K.ANN_REVISIT] = None if prev is None else int(prev["id"])


def current_item(store, batch: int, name: str) -> dict | None:
    revisit = st.session_state.get(K.ANN_REVISIT)
    if revisit is not None:
        items = store.items(batch)
        hit = items[items["id"] == revisit]
        if not hit.empty:
            item = hit.iloc[0].to_dict()
            mine = store.verdicts(batch)
            mine = mine[(mine["item_id"] == revisit) & (mine["annotator"] == name)]
            if not mine.empty:
                item.update(current_verdict=mine["verdict"].iloc[-1], current_comment=mine["comment"].iloc[-1])
            return item
        st.session_state[K.ANN_REVISIT] = None
    return store.next_item(batch, name)


def guidelines(store, batch: int, expanded: bool) -> None:
    """The researcher's guidelines for this batch (shown as plain text, never markup), if any."""
    text = store.guidelines(batch)
    if text.strip():
        with st.expander("Guidelines", icon=":material/menu_book:", expanded=expanded):
            st.text(text)


def annotate(store, batch: int, name: str, n_items: int, annotator: bool = False) -> None:
    """The item, the keys and the progress. ``annotator``: an annotator session (no flagger's evidence)."""
    prog = store.progress(batch, name)
    guidelines(store, batch, expanded=prog.done == 0)
    if prog.total == 0:
        st.warning(f"No item of this batch is assigned to “{md_escape(name)}”. Check the name in your link, or ask "
                   "the researcher for your own link.", icon=":material/person_off:")
        return
    st.progress(prog.fraction, text=f"{prog.done} of {prog.total} judged by {md_escape(name)}")
    saved = st.session_state.pop(K.ANN_SAVED, None)
    if saved:
        if saved[0] == "ok":
            st.toast(saved[1], icon=":material/check:")
        else:
            st.error(saved[1], icon=":material/error:")
    item = current_item(store, batch, name)
    if item is None:
        st.success(f"All {prog.total} items of this batch are judged — thank you, {md_escape(name)}. Your verdicts are saved.",
                   icon=":material/task_alt:")
        st.button("Review my last answer", icon=":material/undo:", on_click=go_back, args=(batch, name, None))
        return
    revising = "current_verdict" in item
    pills = [(f"item {int(item['position']) + 1} of {prog.total}", False)]
    if revising:
        pills.append((f"you answered: {curate.VERDICT_WORDS[item['current_verdict']]} — answer again to change it",
                      True))
    if not annotator and st.session_state.get(K.ANN_SHOW_REASONS):
        if item.get("source"):
            pills.append((f"source {item['source']}", False))
        if item.get("fn_score") is not None and not (isinstance(item["fn_score"], float)
                                                     and math.isnan(item["fn_score"])):
            pills.append((f"FN score {float(item['fn_score']):.2f}", False))
        pills += [(k, False) for k in curate.reason_kinds(item.get("fn_reasons") or "")]
    ds = None if annotator else sidebar.context().dataset
    idf = batch_idf(str(store.path), batch, n_items, ds.key if ds is not None else None, ds)
    st.html(curate.triplet_card(item["query"], item["positive"], item["negative"], idf, pills))

    comment_key = f"{K.ANN_COMMENT}_{int(item['id'])}"
    if revising and comment_key not in st.session_state:
        st.session_state[comment_key] = item.get("current_comment") or ""
    with st.form(key=f"{K.ANN_FORM}_{int(item['id'])}", enter_to_submit=False, border=False):
        st.text_input("Comment (optional)", key=comment_key, placeholder="e.g. answers the query in its second "
                      "sentence")
        cols = st.columns([5, 4, 2, 2])
        for col, verdict in zip(cols, VERDICTS):
            label, key, icon, kind = BUTTONS[verdict]
            col.form_submit_button(label, type=kind, icon=icon, shortcut=key, width="stretch", on_click=record,
                                   args=(batch, int(item["id"]), name, verdict, comment_key))
        cols[3].form_submit_button("Back", icon=":material/undo:", shortcut="B", width="stretch",
                                   on_click=go_back, args=(batch, name, int(item["position"])),
                                   disabled=prog.done == 0, help="The item you answered before this one.")
    st.caption("Keys: **F** false negative · **T** true negative · **U** unsure · **B** back. While the cursor is in "
               "the comment box, letters are text: type the comment, then Tab to a button and press Enter. Each "
               "answer is saved at once; answering an item again replaces your verdict (the old one stays in the "
               "history).")
    if revising:
        st.button("Skip to the next unanswered item", icon=":material/skip_next:", type="tertiary",
                  on_click=lambda: st.session_state.update({K.ANN_REVISIT: None}))


def researcher(store, batch: int) -> None:
    prog = curate.annotator_progress(store, batch)
    v = store.verdicts(batch)
    prec = store.flagger_precision(batch)
    agree = store.agreement(batch)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Annotators", f"{len(prog)}")
    m2.metric("Verdicts", f"{len(v)}", help="Current verdicts (one per annotator and item).")
    m3.metric("Flagger precision", "—" if math.isnan(prec.precision) else f"{prec.precision:.0%}",
              help=f"Share of flagged items judged false negative by consensus: {prec.n_false_negative} of "
                   f"{prec.n_judged} decided items ({prec.n_undecided} undecided: ties or only 'unsure').")
    kappa = agree["kappa"].dropna()
    m4.metric("Mean Cohen's κ", "—" if kappa.empty else f"{kappa.mean():.2f}",
              help="Agreement between pairs of annotators beyond chance, over the items both judged "
                   "(1 = perfect, 0 = chance). Needs two annotators with common items.")
    if prog.empty:
        st.info("No verdicts yet in this batch.", icon=":material/hourglass_empty:")
        return
    st.markdown("**Progress per annotator**")
    st.dataframe(prog, hide_index=True, width="stretch", column_config={
        "share": st.column_config.ProgressColumn("progress", format="percent", min_value=0.0, max_value=1.0),
        "false_negative": st.column_config.NumberColumn("FN"),
        "true_negative": st.column_config.NumberColumn("TN"),
        "last": st.column_config.TextColumn("last answer (UTC)")})
    if not agree.empty:
        st.markdown("**Inter-annotator agreement**")
        st.dataframe(agree, hide_index=True, width="stretch", column_config={
            "annotator_a": st.column_config.TextColumn("annotator A"),
            "annotator_b": st.column_config.TextColumn("annotator B"),
            "n_items": st.column_config.NumberColumn("common items"),
            "observed": st.column_config.NumberColumn("observed agreement", format="percent"),
            "kappa": st.column_config.NumberColumn("Cohen's κ", format="%.3f")})
    st.markdown("**Verdicts per item**")
    st.dataframe(curate.item_table(store, batch), hide_index=True, width="stretch", column_config={
        "item_id": None, "position": st.column_config.NumberColumn("#", format="%d", width="small"),
        "fn_score": st.column_config.NumberColumn("FN score", format="%.2f"),
        "negative": st.column_config.TextColumn("negative", width="large")})
    comments = v[v["comment"].astype(str).str.strip() != ""]
    if not comments.empty:
        with st.expander(f"Comments ({len(comments)})"):
            st.dataframe(comments[["position", "annotator", "verdict", "comment", "time"]], hide_index=True,
                         width="stretch")
    st.download_button("Verdicts (CSV)", curate.verdicts_csv(v), file_name=f"verdicts_batch_{batch}.csv",
                       mime="text/csv", icon=":material/download:", on_click="ignore",
                       help="Reads back with the False negatives page's import (or ecisem_core.curation.exports).")


def setup(store, batch: int, n_items: int) -> None:
    """Researcher: the batch's guidelines, and who judges which item (with an overlap for agreement)."""
    assigned = store.assignments(batch)
    with st.expander("Guidelines and assignment", icon=":material/group:", expanded=assigned.empty):
        key = f"{K.ANN_GUIDE}_{batch}"
        if key not in st.session_state:
            st.session_state[key] = store.guidelines(batch)
        st.text_area("Guidelines for the annotators", key=key, height=120,
                     placeholder="e.g. A passage is a false negative when it answers the query as fully as the "
                                 "labeled positive. Judge the passage alone, not its source.",
                     help="Shown above the item on every annotator's page, as plain text.")
        if st.button("Save guidelines", icon=":material/save:"):
            store.set_guidelines(batch, st.session_state.get(key) or "")
            st.toast("Guidelines saved", icon=":material/check:")
        st.divider()
        c1, c2, c3 = st.columns([3, 2, 1.3])
        c1.text_input("Annotators (comma-separated)", key=K.ANN_ASSIGNEES, placeholder="e.g. alice, bob, chen")
        c2.slider("Overlap: share of items judged by several", 0.0, 1.0, OVERLAP_DEFAULT, 0.05, key=K.ANN_OVERLAP,
                  format="%.2f", help="These items are dealt to several annotators, so Cohen's κ can be measured "
                                      "on them; every other item goes to one annotator.")
        c3.number_input("Annotators per shared item", 2, 20, PER_SHARED_DEFAULT, key=K.ANN_PER_SHARED)
        if st.button(f"Deal the {n_items} items", icon=":material/call_split:",
                     help="Replaces this batch's assignment; verdicts already given are kept."):
            try:
                names = annotator_names((st.session_state.get(K.ANN_ASSIGNEES) or "").split(","))
                items = store.items(batch)["id"]
                store.assign(batch, assign_items(items, names, float(st.session_state.get(K.ANN_OVERLAP)),
                                                 int(st.session_state.get(K.ANN_PER_SHARED)), seed=batch))
            except InputError as exc:
                st.error(md_escape(exc), icon=":material/error:")
            else:
                assigned = store.assignments(batch)
        if assigned.empty:
            st.caption("Open to everyone: whoever opens the batch's link judges every item.")
            return
        loads = load_table(assigned)
        base = curate.app_base(st.context.url, curate.page_path(SELF))
        loads["link"] = [curate.batch_link(base, curate.page_path(SELF), batch, a) for a in loads["annotator"]]
        st.markdown(f"**Dealt to {len(loads)} annotator(s)** — each link opens this page alone, with no "
                    "researcher controls:")
        st.dataframe(loads, hide_index=True, width="stretch", column_config={
            "items": st.column_config.NumberColumn("items"),
            "shared": st.column_config.NumberColumn("of which shared"),
            "link": st.column_config.TextColumn("annotator link", width="large")})
        st.code("\n".join(loads["link"]), language=None, wrap_lines=True)
        if st.button("Open the batch to everyone again", icon=":material/lock_open:", type="tertiary"):
            store.assign(batch, assigned.iloc[0:0])
            st.rerun()


def annotator_page(store, batches) -> None:
    """An annotator link: the batch it names, the name it carries (or typed once), nothing else."""
    sync_from_url()
    batch = st.session_state.get(K.ANN_BATCH)
    if batch is None or batch not in set(batches["id"]):
        st.error("This link names no batch of this annotation store. Ask the researcher for your link.",
                 icon=":material/link_off:")
        return
    n_items = int(batches.loc[batches["id"] == batch, "n_items"].iloc[0])
    name = (st.query_params.get("annotator") or "").strip()
    if not name:
        name = (st.text_input("Your name", key=K.ANN_NAME, placeholder="e.g. alice",
                              help="Verdicts are saved under this name; use the same one to resume.") or "").strip()
        if not name:
            st.info("Type your name above to start.", icon=":material/badge:")
            return
        sync_to_url(batch, name)
    annotate(store, batch, name, n_items, annotator=True)


def main() -> None:
    annotator = st.session_state.get(K.ANN_ROLE) == roles.ANNOTATOR or roles.server_role() == roles.ANNOTATOR
    layout.header("Annotate", "Is the candidate negative a <b>false negative</b> — does it answer the query as well "
                              "as the labeled positive does?")
    store, error = curate.try_open_store()
    if store is None:
        st.error(error, icon=":material/database:")
        return
    batches = store.list_batches()
    if annotator:
        annotator_page(store, batches)
        return
    if batches.empty:
        st.info("No annotation batches yet. Create one on the False negatives page (select rows, then “Send to "
                "annotation”).", icon=":material/inbox:")
        st.page_link(FN_PAGE, label="Go to False negatives", icon=":material/flag:")
        return
    sync_from_url()
    options = curate.batch_options(batches)
    wanted = st.session_state.get(K.ANN_BATCH)
    notice = None
    if wanted is not None and wanted not in options:
        notice = f"There is no batch #{wanted} in this store; pick one below."
        st.session_state[K.ANN_BATCH] = None
    c1, c2 = st.columns([3, 2])
    batch = c1.selectbox("Batch", list(options), format_func=options.get, key=K.ANN_BATCH, index=None,
                         placeholder="pick a batch")
    name = (c2.text_input("Your name", key=K.ANN_NAME, placeholder="e.g. alice",
                          help="Verdicts are saved under this name; use the same one to resume.") or "").strip()
    sync_to_url(batch, name)
    if notice:
        st.warning(notice, icon=":material/link_off:")
    if batch is None:
        st.info("Pick a batch (or open the link you were sent).", icon=":material/rate_review:")
        return
    n_items = int(batches.loc[batches["id"] == batch, "n_items"].iloc[0])
    tab_a, tab_r = st.tabs(["Annotate", "Researcher view"])
    with tab_a:
        st.toggle("Show why it was flagged", key=K.ANN_SHOW_REASONS,
                  help="Off by default: seeing the flagger's score and reasons can bias the judgement.")
        if not name:
            st.info("Type your name above to start.", icon=":material/badge:")
        else:
            annotate(store, batch, name, n_items)
    with tab_r:
        setup(store, batch, n_items)
        researcher(store, batch)


main()
