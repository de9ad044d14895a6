"""Shared page furniture: style, page header, the "no data" state, the scored-data bundle pages start from."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import streamlit as st

from ecisem_core.errors import InputError
from ecisem_core.metric.presets import preset_of
from ecisem_core.score import Prepared, ScoreResult
from ecisem_core.ui import data
from ecisem_core.ui.sidebar import Context, context
from ecisem_core.ui.state import ui_settings, ui_symbol
from ecisem_core.ui.text import html_escape, md_escape

CSS = """
<style>
  .block-container {padding-top: 2.2rem; padding-bottom: 2rem; max-width: 1500px;}
  [data-testid="stSidebar"] [data-testid="stMarkdownContainer"] p {margin-bottom: 0.2rem;}
  h1 {font-weight: 650; letter-spacing: -0.01em;}
  .eci-sub {color: #6B7280; font-size: 0.92rem; margin-top: -0.6rem; margin-bottom: 1rem;}
  .eci-card {border: 1px solid #E5E7EB; border-radius: 10px; padding: 0.75rem 0.95rem; margin-bottom: 0.7rem;
             background: #FFFFFF;}
  .eci-card .lbl {font-size: 0.72rem; text-transform: uppercase; letter-spacing: 0.05em; color: #6B7280;
                  margin-top: 0.35rem;}
  .eci-card .txt {font-size: 0.9rem; line-height: 1.45; color: #111827;}
  .eci-card .meta {font-size: 0.8rem; color: #4B5563; margin-bottom: 0.2rem;}
  .eci-pill {display: inline-block; padding: 0 0.45rem; border-radius: 999px; background: #F3F4F6;
             font-size: 0.75rem; margin-right: 0.3rem; color: #374151;}
  .eci-pill.warn {background: #FEF3C7; color: #92400E;}
  /* No fade of the elements a rerun has not redrawn yet (Streamlit: opacity → 0.33 over 1 s after 0.5 s; an
     expander's header likewise, without the data-stale mark): the pending transition made Chromium composite and
     raster each of them on every slider move (docs/DASHBOARD.md, "Stale elements"); the header's running
     indicator says a rerun is under way. The expanders' border-colour change is a paint, left as it is. */
  [data-stale="true"], [data-stale="true"] *, [data-testid="stExpander"] summary {transition: none !important;}
  [data-stale="true"], [data-testid="stExpander"] summary {opacity: 1 !important;}
  /* The progress bar jumps to each new value instead of gliding: its transform transition, restarted by every
     half-second poll while a bootstrap runs, kept Chromium rastering about 8% of a core more (docs/DASHBOARD.md). */
  [data-testid="stProgress"], [data-testid="stProgress"] * {transition: none !important;}
  /* narrow windows (≈1024 px with the sidebar open): less side padding, smaller metric values, wide tables scroll */
  @media (max-width: 1200px) {
    .block-container {padding-left: 1.5rem; padding-right: 1.5rem;}
    [data-testid="stMetricValue"] {font-size: 1.55rem;}
    [data-testid="stMetricLabel"] p {font-size: 0.8rem;}
  }
</style>
"""


def apply_style() -> None:
    st.html(CSS)


def header(title: str, subtitle: str | None = None) -> None:
    st.title(title)
    if subtitle:
        st.html(f'<div class="eci-sub">{subtitle}</div>')


@dataclass
class Scored:
    """What the analysis pages start from. ``request`` (the ScoreConfig of the sliders, made once per run, and the
    sources ranked) is what the pages pass to the other ``data`` functions."""

    ctx: Context
    dataset: data.Dataset
    prep: Prepared
    result: ScoreResult
    request: data.ScoreRequest


def scored() -> Scored | None:
    """The current dataset prepared and scored for the sliders, or ``None`` after telling the user why not."""
    ctx = context()
    if ctx.dataset is None:
        if ctx.error:
            st.error(f"Cannot load the dataset — {md_escape(ctx.error)}", icon=":material/error:")
        else:
            st.info("Choose a dataset in the sidebar: the demo, an upload, or a path under the data root.",
                    icon=":material/dataset:")
        return None
    try:
        prep = data.prepared(ctx.dataset, ctx.encoder)
        mark("prepared")
        req = data.request(ctx.view, ctx.dataset, prep.dim)
        result = data.scores(ctx.dataset, ctx.encoder, req, prep)
    except InputError as exc:
        st.error(md_escape(exc), icon=":material/error:")
        return None
    return Scored(ctx, ctx.dataset, prep, result, req)


def scored_page(title: str) -> Scored | None:
    """The start of an analysis page: :func:`scored`, then the title with :func:`describe` under it (the title
    alone when there is nothing to score; :func:`scored` has said why)."""
    s = scored()
    header(title, describe(s) if s is not None else None)
    return s


def describe(s: Scored) -> str:
    """One line under a page title: dataset, size, encoder and the metric settings (as the sidebar shows them)."""
    values = [(ui_symbol(x), s.ctx.view.metric[x.name]) for x in ui_settings()]
    shown = ", ".join(f"{sym} {v:g}" if isinstance(v, float) else f"{sym} {v}" for sym, v in values)
    name = preset_of(s.request.config)
    settings = f"preset {name}" if name else "custom settings"
    return (f"{html_escape(s.dataset.label)} · {len(s.dataset.table):,} triplets · {len(s.result.sources)} sources · "
            f"encoder {html_escape(s.result.encoder_id.split('@')[0])} (d = {s.result.dim}) · {settings}: {shown}")


PAINT_PAUSE_S = 0.025
"""How long a page pauses after the element a slider move waits for (:func:`paint_first`)."""


def paint_first() -> None:
    """Let the browser draw what was just sent before the rest of the run arrives: a pause of
    :data:`PAINT_PAUSE_S` (the script thread sleeps; the element is already on its way to the browser). The
    browser applies every message that has arrived before it paints, so the rest of the page and the sidebar,
    sent straight after the leaderboard table, held the table back: in alternating slider moves at 100k triplets
    (two browser sessions, 13 moves each way) table sent → shown went from 27–32 ms to 9–10 ms and the whole
    latency from 129–130 ms to 95–102 ms. The rest of the page comes that much later."""
    time.sleep(PAINT_PAUSE_S)


TIMING_ENV = "ECISEM_TIMING"
"""When set to a file path, each script run appends its milestones (epoch seconds) there as one JSON line —
used by ``benchmarks/bench_dashboard.py`` to split a slider's latency into server and browser time."""
_MARKS = "_ecisem_marks"


def mark(label: str) -> None:
    """Record a milestone of this run (no-op unless ``ECISEM_TIMING`` is set)."""

    if os.environ.get(TIMING_ENV):
        st.session_state.setdefault(_MARKS, {})[label] = time.time()


def flush_marks() -> None:
    """Append this run's milestones to the ``ECISEM_TIMING`` file and start afresh."""

    path = os.environ.get(TIMING_ENV)
    marks = st.session_state.pop(_MARKS, None)
    if path and marks:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(marks) + "\n")
