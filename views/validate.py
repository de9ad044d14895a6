"""Validate: results of `ecisem validate` (downstream metrics per source, agreement of each score with them, the
calibrated settings to load into the sidebar) and a small run started in the background with its progress.
The logic is in ecisem_core/ui/validation_view.py."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from ecisem_core.downstream.calibrate import grid_settings
from ecisem_core.errors import InputError
from ecisem_core.ui import layout, sidebar
from ecisem_core.ui import validation_view as vv
from ecisem_core.ui.data import demo_path
from ecisem_core.confine import confined_to
from ecisem_core.ui.text import md_escape
from ecisem_core.ui.paths import data_root, relative_to_root
from ecisem_core.ui.state import K, ui_symbol, widget_key

SOURCE_LABELS = {"folder": "A results folder", "run": "The run started here"}
POLL_S = 2.0


# ------------------------------------------------------------------------------------------------ callbacks


def _use_settings(values: dict, notes: list[str]) -> None:
    vv.apply_settings(st.session_state, values)
    loaded = [ui_symbol(x) for x in vv.sidebar_settings() if widget_key(x) in values]
    msg = f"Loaded the calibrated {', '.join(loaded)} into the sidebar."
    st.session_state[K.VAL_APPLIED] = ("warning" if notes else "ok", " ".join([msg, *[n + "." for n in notes]]))


def _pick_folder() -> None:
    picked = st.session_state.get(K.VAL_PICK)
    if picked:
        st.session_state[K.VAL_FOLDER] = picked
        st.session_state[K.VAL_SOURCE] = "folder"


def _start(ds_id: str | None, table) -> None:
    try:
        if ds_id is None:
            raise InputError("no dataset loaded: choose one in the sidebar first")
        eval_spec = vv.eval_argument(st.session_state.get(K.VAL_EVAL) or "")
        seeds = vv.parse_seeds(st.session_state.get(K.VAL_SEEDS) or "")
        out = vv.new_run_folder()
        files = vv.dataset_files(ds_id, demo_path())
        if files is None:  # an upload: its table goes into the run folder
            files = [out / "training_triplets.jsonl"]
            table.to_json(files[0], orient="records", lines=True, force_ascii=False)
        cmd = vv.build_command(files, eval_spec, out, per_source=int(st.session_state[K.VAL_PER_SOURCE]),
                               epochs=int(st.session_state[K.VAL_EPOCHS]), seeds=seeds)
        vv.start_run(cmd, out)
    except (InputError, OSError) as exc:
        st.session_state[K.VAL_START_ERROR] = str(exc.problem if isinstance(exc, InputError) and not exc.path
                                                  else exc)
        return
    st.session_state[K.VAL_RUN] = str(out)
    st.session_state[K.VAL_SOURCE] = "run"


def _stop(out: str) -> None:
    run = vv.get_run(out)
    if run is not None:
        vv.stop_run(run)


# ------------------------------------------------------------------------------------------------ run section


def _running() -> vv.Run | None:
    out = st.session_state.get(K.VAL_RUN)
    run = vv.get_run(out) if out else None
    return run if run is not None and run.status() == "running" else None


def run_section(ctx: sidebar.Context) -> None:
    running = _running()
    with st.expander("Start a small run", icon=":material/play_circle:", expanded=running is not None):
        ds = ctx.dataset
        if ds is None and ctx.error:
            st.error(f"Cannot load the dataset — {md_escape(ctx.error)}", icon=":material/error:")
        elif ds is None:
            st.info("Load a dataset in the sidebar: its sources are what the run fine-tunes on.")
        else:
            st.caption(f"Fine-tunes a copy of the base model (all-MiniLM-L6-v2) on each source of **{ds.label}** "
                       f"({len(ds.sources)} sources) and evaluates it; runs in the background — this page stays "
                       f"usable. Evaluation on a seeded sample of {vv.SMALL_EVAL_QUERIES} queries and "
                       f"{vv.SMALL_EVAL_PASSAGES:,} passages. On 2 CPU cores expect minutes, even at a few dozen "
                       "triplets per source.")
        st.text_input("Evaluation data under the data root", key=K.VAL_EVAL,
                      placeholder="e.g. msmarco/dev.tsv, a BEIR folder, or split:0.2",
                      help="A BEIR folder (corpus.jsonl, queries.jsonl, qrels/), a TSV/CSV of query/relevant-"
                           "passage pairs, or split:FRACTION to hold out that share of the dataset's queries. "
                           f"Read only from inside {data_root()}.")
        c1, c2, c3 = st.columns(3)
        c1.number_input("Triplets per source", min_value=8, max_value=5000, value=32, step=8, key=K.VAL_PER_SOURCE)
        c2.number_input("Epochs", min_value=1, max_value=5, value=1, key=K.VAL_EPOCHS)
        c3.text_input("Seeds", value="0", key=K.VAL_SEEDS, help="Space-separated, e.g. 0 1 2 (mean ± sd over them).")
        st.button("Start run", icon=":material/play_arrow:", type="primary", disabled=running is not None,
                  on_click=_start, args=(ds.id if ds is not None else None, ds.table if ds is not None else None),
                  help="Writes into a new folder under validation-runs/ in the data root.")
        error = st.session_state.pop(K.VAL_START_ERROR, None)
        if error:
            st.error(error, icon=":material/error:")
        out = st.session_state.get(K.VAL_RUN)
        if out:
            progress(out, running is not None)


def progress(out: str, running: bool) -> None:
    @st.fragment(run_every=POLL_S if running else None)
    def live() -> None:
        run = vv.get_run(out)
        status = run.status() if run is not None else "unknown"
        st.markdown(f"**Run** `{relative_to_root(Path(out)) if Path(out).is_relative_to(data_root()) else out}` "
                    f"· {status}")
        log = vv.tail(Path(out) / vv.LOG_FILE)
        bar = vv.progress(log)
        if bar is not None:
            desc, done, total = bar
            st.progress(done / total if total else 0.0, text=f"{desc or 'progress'}: {done} of {total}")
        st.code(log or "starting…", language=None)
        if status == "running":
            st.button("Stop run", icon=":material/stop:", key="val_stop", on_click=_stop, args=(out,),
                      help="Interrupts it like Ctrl-C: completed (source, seed) runs stay cached.")
        elif running:  # it ended since the page was drawn: redraw the whole page with its results
            st.rerun(scope="app")
        elif status == "failed":
            st.error("The run ended with an error: see the log above.", icon=":material/error:")

    live()


# ------------------------------------------------------------------------------------------------ results


def choose_folder() -> Path | None:
    has_run = bool(st.session_state.get(K.VAL_RUN))
    options = ["folder", "run"] if has_run else ["folder"]
    if st.session_state.get(K.VAL_SOURCE) not in options:
        st.session_state[K.VAL_SOURCE] = options[-1]
    if has_run:
        st.segmented_control("Show", options, format_func=SOURCE_LABELS.get, key=K.VAL_SOURCE, required=True)
    if st.session_state[K.VAL_SOURCE] == "run":
        out = Path(st.session_state[K.VAL_RUN])
        if _running() is not None:
            st.info("The run is still going (progress above); its results appear here when it finishes.",
                    icon=":material/hourglass_top:")
            return None
        return out
    root = data_root()
    found = vv.find_result_folders(root)
    c1, c2 = st.columns([2, 3])
    if found:
        c1.selectbox("Results found under the data root", [""] + [relative_to_root(p, root) for p in found],
                     key=K.VAL_PICK, on_change=_pick_folder, format_func=lambda v: v or "(choose)")
    c2.text_input("Results folder under the data root", key=K.VAL_FOLDER,
                  placeholder="e.g. validation or runs/msmarco-validate",
                  help=f"The --out folder of `ecisem validate`. Read only from inside {root}.")
    text = (st.session_state.get(K.VAL_FOLDER) or "").strip()
    if not text:
        if (vv.EXAMPLE_DIR / "validation.csv").is_file():
            st.info("Showing the bundled example: the weak-start regime of the project's validity study (12 MS MARCO "
                    "negative sources, 2 seeds, evaluated on MED and CISI; see the README). Choose a results folder "
                    "of `ecisem validate`, or start a small run above, to see your own.", icon=":material/science:")
            return vv.EXAMPLE_DIR
        st.info("Choose a results folder of `ecisem validate`, or start a small run above.", icon=":material/folder_open:")
        return None
    try:
        return vv.results_folder(text, root)
    except InputError as exc:
        st.error(exc.problem, icon=":material/block:")
        return None


def show_calibration(res: vv.Results) -> None:
    st.subheader("Calibrated settings", divider="gray")
    cal = res.calibration
    if cal is None:
        st.info(res.calibration_note, icon=":material/tune:")
        return
    dim = vv.embedding_dim(res.summary)
    shown = grid_settings()
    for col, x in zip(st.columns(len(shown)), shown):
        value = cal.settings.get(x.name, float("nan"))
        per_dim = f"  (= {value / dim:g}·d)" if x.per_dim and dim else ""
        col.metric(x.short, f"{value:g}{per_dim}")
    n_src = cal.n_sources if cal.n_sources is not None else res.n_sources
    n_seeds = cal.n_seeds if cal.n_seeds is not None else res.n_seeds
    fmt = (lambda x: "—" if x is None else f"{x:+.3f}")
    st.markdown(
        f"Fitted on **{n_src} sources × {n_seeds} seed(s)**. "
        f"**Out-of-sample agreement (leave one source out): Kendall τ {fmt(cal.loo_kendall)}, "
        f"Spearman ρ {fmt(cal.loo_spearman)}** — each source's rank predicted by settings fitted without it; "
        f"this is the number to quote.")
    st.caption(f"In-sample Kendall τ {fmt(cal.in_sample_kendall)} (optimistic: scored on the sources it was fitted "
               f"to) · default settings {fmt(cal.default_kendall)}. With few sources every one of these is noisy.")
    values, notes = vv.sidebar_values(cal, dim)
    st.button("Use these settings", icon=":material/input:", on_click=_use_settings, args=(values, notes),
              help=f"Sets the sidebar's {', '.join(ui_symbol(x) for x in vv.sidebar_settings())} to the calibrated "
                   "values (the share link carries them).")
    msg = st.session_state.pop(K.VAL_APPLIED, None)
    if msg:
        (st.success if msg[0] == "ok" else st.warning)(msg[1], icon=":material/check:" if msg[0] == "ok" else
                                                       ":material/warning:")


def show_results(folder: Path) -> None:
    try:
        with confined_to(None if folder == vv.EXAMPLE_DIR else data_root()):  # files in it stay in the root
            res = vv.read_results(folder)
    except InputError as exc:
        st.error(f"Cannot show this folder — {exc}", icon=":material/error:")
        return
    details = vv.run_details(res.summary)
    st.caption(f"`{folder.name}` · {res.n_sources} sources × {res.n_seeds} seed(s)" + (f" · {details}" if details
                                                                                       else ""))
    for note in res.notes:
        st.warning(note, icon=":material/warning:")
    for warning in res.summary.get("warnings") or []:
        st.warning(str(warning), icon=":material/warning:")
    seed_tau = res.summary.get("seed_kendall_tau")
    if isinstance(seed_tau, (int, float)):
        st.caption(f"Seed-to-seed Kendall τ of the downstream ranking: {seed_tau:+.2f} — how reproducible the "
                   "ranking itself is; no score can be trusted to agree with it more than that.")

    st.subheader("Downstream retrieval after a short fine-tune", divider="gray")
    st.dataframe(vv.downstream_table(res.table), hide_index=True, width="stretch")
    st.caption("Mean ± sd over seeds on the evaluation set; rank by mean nDCG@10 (the downstream ranking the "
               "scores are checked against). The untrained base is the starting model, not fine-tuned.")

    st.subheader("Agreement of each score with the downstream ranking", divider="gray")
    st.dataframe(vv.agreement_table(res.agreement), hide_index=True, width="stretch")
    st.caption("+1: the score orders the sources exactly as the fine-tunes did; 0: no relation. CIs: percentile "
               "bootstrap over sources (wide with few sources). Scores computed with the frozen base encoder.")
    st.plotly_chart(vv.figure(res), width="stretch", key="val_agreement_plot", config={"displaylogo": False},
                    theme=None)
    show_calibration(res)


def main() -> None:
    ctx = sidebar.context()
    layout.header("Validate", "Does ranking sources by ECI_sem predict what a short fine-tune on each source does? "
                              "Results of <code>ecisem validate</code>, and its calibrated settings.")
    run_section(ctx)
    folder = choose_folder()
    if folder is not None:
        show_results(folder)


main()
