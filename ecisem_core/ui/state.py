"""Every dashboard setting and every ``st.session_state`` key, declared in one place (no Streamlit import).

A :class:`Settings` is what the sidebar and the pages' own controls hold and what a share link carries. The
session-state keys of the widgets are the constants of :class:`K`; :func:`settings_from_state` and
:func:`settings_to_state` convert between a ``Settings`` and a session-state mapping (any ``MutableMapping``, so
tests can pass a dict).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from ecisem_core.config import ALPHA, BETA, EPS2, GAMMA, SAMPLE_SIZE, SEED, TAU, ScoreConfig
from ecisem_core.embed.projection import CAP_PER_SOURCE


class K:
    """Session-state keys (widget keys are the same strings)."""

    DATASET = "ds"                 # current dataset id: "demo" | "path:<relative path>" | "upload:<fingerprint>"
    DS_MODE = "ds_mode"            # radio: demo | upload | path
    DS_PATH = "ds_path"            # text input: a path under the data root
    DS_UPLOAD = "ds_upload"        # file uploader
    ENC_KIND = "enc_kind"          # radio: default | tfidf | path
    ENC_PATH = "enc_path"          # text input: a local model folder under the data root
    TAU = "tau"
    ALPHA = "alpha"
    BETA = "beta"
    GAMMA = "gamma"
    KAPPA_D = "kappa_d"            # κ / d
    SAMPLE_SIZE = "sample_size"
    SEED = "seed"
    SOURCES = "sources"            # multiselect of source names ([] or missing = all)
    WHY_A = "why_a"                # "Why this rank": the two sources compared
    WHY_B = "why_b"
    COLOUR = "geo_colour"          # Geometry: colour by
    QUERY = "geo_query"            # Geometry: query whose links are drawn ("" = none)
    CAP = "geo_cap"                # Geometry: triplets per source
    VIEW = "view"                  # url path of the page being shown
    INITIALISED = "_ecisem_initialised"   # set once the URL has been read into the session
    NOTICES = "_ecisem_notices"           # messages from reading the URL, shown once in the sidebar
    UPLOAD_LABEL = "_ecisem_upload_label"  # file name(s) of the dataset uploaded in this session

    # ---- Curate pages: False negatives (pages/false_negatives.py) and Annotate (pages/annotate.py) ----
    FN_SOURCES = "fn_sources"              # sources listed ([] = every source of the sidebar selection)
    FN_REASONS = "fn_reason_filter"        # reason kinds ([] = any)
    FN_MIN_SCORE = "fn_min_score"          # hide flagged rows scored below this
    FN_JUNK = "fn_junk"                    # show the junk list
    FN_RANK = "fn_rank"                    # rank by: "fn_score" | "fn_model" (the learned scorer)
    FN_TABLE = "fn_table"                  # the review list (its row selection)
    FN_FILTER_SIG = "_fn_filter_sig"       # filters the selection belongs to (a change clears it)
    FN_PICKED = "_fn_picked"               # selected row positions last seen
    FN_SEND = "fn_send"                    # send to a batch: "selected" | "top"
    FN_TOP_N = "fn_top_n"
    FN_BATCH_NAME = "fn_batch_name"
    FN_ANNOTATORS = "fn_annotators"        # names for personal batch links
    FN_LAST_BATCH = "_fn_last_batch"       # id of the batch created last in this session
    FN_IMPORT = "fn_import"                # verdict CSV uploader
    FN_IMPORT_INTO = "fn_import_into"      # batch id to import into (0 = a new batch)
    FN_IMPORT_ANNOTATOR = "fn_import_annotator"
    FN_CLEAN_MODE = "fn_clean_mode"        # cleaned training file: "drop" | "weight"
    FN_CLEAN_THRESHOLD = "fn_clean_threshold"
    FN_CLEAN_FORMAT = "fn_clean_format"    # "jsonl" | "csv"
    ANN_BATCH = "ann_batch"                # Annotate: batch id
    ANN_NAME = "ann_name"                  # annotator name
    ANN_URL = "_ann_url"                   # (batch, annotator) last read from / written to the URL
    ANN_REVISIT = "_ann_revisit"           # item id being answered again (None = the next unanswered one)
    ANN_SAVED = "_ann_saved"               # ("ok" | "error", message) of the last answer, shown once
    ANN_COMMENT = "ann_comment"            # comment box (key + "_<item id>")
    ANN_FORM = "ann_form"                  # answer form (key + "_<item id>")
    ANN_SHOW_REASONS = "ann_show_reasons"  # show the flagger's score and reasons to the annotator

    # ---- Validate page (pages/validate.py) ----
    VAL_SOURCE = "val_source"              # what to show: "folder" (a results folder) | "run" (the page's last run)
    VAL_FOLDER = "val_folder"              # results folder under the data root (text input)
    VAL_PICK = "val_pick"                  # results folder picked from those found under the data root
    VAL_EVAL = "val_eval"                  # "Start a small run": eval file/folder under the data root, or split[:f]
    VAL_PER_SOURCE = "val_per_source"      # triplets per source
    VAL_EPOCHS = "val_epochs"
    VAL_SEEDS = "val_seeds"                # seeds, e.g. "0 1"
    VAL_RUN = "_val_run"                   # output folder of the run started last from this session
    VAL_APPLIED = "_val_applied"           # ("ok" | "warning", message) after "Use these settings", shown once
    VAL_START_ERROR = "_val_start_error"   # why the last "Start run" click did not start a run, shown once


DATASET_DEMO = "demo"
ENCODER_DEFAULT = "default"
ENCODER_TFIDF = "tfidf"
PATH_PREFIX = "path:"
UPLOAD_PREFIX = "upload:"

KAPPA_D_DEFAULT = 1.0 / EPS2
"""κ/d of the metric's default κ = d/ε² (= 2)."""
KAPPA_D_OPTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0)
"""Steps of the κ/d slider (log-spaced; small κ → ECI_sem ≈ info, diversity stops mattering)."""
COLOUR_OPTIONS = ("role", "source", "c", "h", "rho", "w", "fn_score")
"""What the Geometry view can colour points by."""

RANGES: dict[str, tuple[float, float]] = {
    "tau": (0.005, 0.5), "alpha": (0.0, 3.0), "beta": (0.0, 3.0), "gamma": (0.0, 3.0),
    "sample_size": (50, 50_000), "seed": (0, 2**31 - 1), "cap": (50, 20_000),
}
"""Allowed range of each numeric setting (the widgets' bounds; a share link outside them is clamped)."""
STEPS = {"tau": 0.005, "alpha": 0.1, "beta": 0.1, "gamma": 0.1, "sample_size": 50, "cap": 50}


@dataclass(frozen=True)
class Settings:
    """Everything a share link reproduces. ``sources=()`` means every source."""

    dataset: str = DATASET_DEMO
    encoder: str = ENCODER_DEFAULT
    tau: float = TAU
    alpha: float = ALPHA
    beta: float = BETA
    gamma: float = GAMMA
    kappa_d: float = KAPPA_D_DEFAULT
    sample_size: int = SAMPLE_SIZE
    seed: int = SEED
    sources: tuple[str, ...] = ()
    view: str = ""
    why_a: str = ""
    why_b: str = ""
    colour: str = "role"
    query: str = ""
    cap: int = CAP_PER_SOURCE

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    def config_for(self, dim: int) -> ScoreConfig:
        """:class:`ScoreConfig` for embedding dimension ``dim``."""
        kappa = None if self.kappa_d == KAPPA_D_DEFAULT else float(self.kappa_d) * dim
        return ScoreConfig(tau=self.tau, alpha=self.alpha, beta=self.beta, gamma=self.gamma, kappa=kappa,
                           sample_size=int(self.sample_size), seed=int(self.seed))

    def metric_key(self) -> tuple:
        """Hashable key of what the scores depend on (besides dataset and encoder)."""
        return (self.tau, self.alpha, self.beta, self.gamma, self.kappa_d, int(self.sample_size), int(self.seed),
                self.sources)


# widget key ↔ Settings field (the dataset and encoder are derived from several widgets, see the sidebar)
FIELD_KEYS: dict[str, str] = {
    "tau": K.TAU, "alpha": K.ALPHA, "beta": K.BETA, "gamma": K.GAMMA, "kappa_d": K.KAPPA_D,
    "sample_size": K.SAMPLE_SIZE, "seed": K.SEED, "sources": K.SOURCES, "view": K.VIEW,
    "why_a": K.WHY_A, "why_b": K.WHY_B, "colour": K.COLOUR, "query": K.QUERY, "cap": K.CAP,
    "dataset": K.DATASET,
}


def settings_from_state(state: Mapping[str, Any]) -> Settings:
    """The :class:`Settings` held in a session-state mapping (defaults for what is missing)."""
    base = Settings()
    values: dict[str, Any] = {}
    for name, key in FIELD_KEYS.items():
        if key in state and state[key] is not None:
            values[name] = state[key]
    if "sources" in values:
        values["sources"] = tuple(values["sources"])
    kind = state.get(K.ENC_KIND, "default")
    if kind == "tfidf":
        values["encoder"] = ENCODER_TFIDF
    elif kind == "path" and state.get(K.ENC_PATH):
        values["encoder"] = PATH_PREFIX + str(state[K.ENC_PATH]).strip()
    else:
        values["encoder"] = ENCODER_DEFAULT
    for name in ("sample_size", "seed", "cap"):
        if name in values:
            values[name] = int(values[name])
    for name in ("tau", "alpha", "beta", "gamma", "kappa_d"):
        if name in values:
            values[name] = float(values[name])
    return base.replace(**values)


def settings_to_state(settings: Settings, state: MutableMapping[str, Any]) -> None:
    """Write a :class:`Settings` into the widget keys (used once per session, from the URL)."""
    for name, key in FIELD_KEYS.items():
        value = getattr(settings, name)
        state[key] = list(value) if name == "sources" else value
    ds = settings.dataset
    if ds.startswith(PATH_PREFIX):
        state[K.DS_MODE], state[K.DS_PATH] = "path", ds[len(PATH_PREFIX):]
    elif ds.startswith(UPLOAD_PREFIX):
        state[K.DS_MODE] = "upload"
    else:
        state[K.DS_MODE] = "demo"
    enc = settings.encoder
    if enc == ENCODER_TFIDF:
        state[K.ENC_KIND] = "tfidf"
    elif enc.startswith(PATH_PREFIX):
        state[K.ENC_KIND], state[K.ENC_PATH] = "path", enc[len(PATH_PREFIX):]
    else:
        state[K.ENC_KIND] = "default"
