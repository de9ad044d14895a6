"""Every dashboard setting and every ``st.session_state`` key, declared in one place (no Streamlit import).

A :class:`ViewState` is what the sidebar and the pages' own controls hold and what a share link carries: the view
fields (dataset, encoder, sources, page settings) and ``metric``, a :class:`MetricState` holding every metric
setting of the registry (:data:`ecisem_core.config.SETTINGS`) that has a sidebar widget or a share-link parameter.
A per-dimension setting (κ) is held as its value per dimension (κ/d); :func:`to_config_value` is the one place it
becomes absolute, and :meth:`MetricState.config_for` the one place a :class:`ScoreConfig` is made.

The session-state keys are the constants of :class:`K`, plus :func:`widget_key` of each metric setting;
:func:`view_from_state` and :func:`view_to_state` convert between a ``ViewState`` and a session-state mapping (any
``MutableMapping``, so tests can pass a dict).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from ecisem_core.config import ScoreConfig, Setting, config_class, registry, setting
from ecisem_core.embed.projection import CAP_PER_SOURCE


class K:
    """Session-state keys (widget keys are the same strings). Metric settings' keys: :func:`widget_key`."""

    DATASET = "ds"                 # current dataset id: "demo" | "path:<relative path>" | "upload:<fingerprint>"
    DS_MODE = "ds_mode"            # radio: demo | upload | path
    DS_PATH = "ds_path"            # text input: a path under the data root
    DS_UPLOAD = "ds_upload"        # file uploader
    ENC_KIND = "enc_kind"          # radio: default | tfidf | path | name
    ENC_PATH = "enc_path"          # text input: a local model folder under the data root
    ENC_NAME = "enc_name"          # text input: a sentence-transformers model name from the local Hugging Face cache
    # metric settings: widget_key(setting), e.g. "tau", "kappa_d" (κ/d)
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

    # ---- Curate pages: False negatives (views/false_negatives.py) and Annotate (views/annotate.py) ----
    FN_SOURCES = "fn_sources"              # sources listed ([] = every source of the sidebar selection)
    FN_REASONS = "fn_reason_filter"        # reason kinds ([] = any)
    FN_MIN_SCORE = "fn_min_score"          # hide flagged rows scored below this
    FN_JUNK = "fn_junk"                    # show the junk list
    FN_RANK = "fn_rank"                    # rank by: "fn_score" | "fn_model" (the learned scorer)
    FN_TABLE = "fn_table"                  # the review list (its row selection)
    FN_FILTER_SIG = "_fn_filter_sig"       # filters the selection belongs to (a change clears it)
    FN_PICKED = "_fn_picked"               # selected row positions last seen
    FN_SEND = "fn_send"                    # send to a batch: "queue" | "top" | "selected"
    FN_QUEUE_N = "fn_queue_n"              # items in a review-queue batch
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
    FN_EXPORT_REASONS = "fn_export_reasons"  # Label Studio / Argilla exports carry the flagger's evidence
    ANN_BATCH = "ann_batch"                # Annotate: batch id
    ANN_NAME = "ann_name"                  # annotator name
    ANN_URL = "_ann_url"                   # (batch, annotator) last read from / written to the URL
    ANN_REVISIT = "_ann_revisit"           # item id being answered again (None = the next unanswered one)
    ANN_SAVED = "_ann_saved"               # ("ok" | "error", message) of the last answer, shown once
    ANN_COMMENT = "ann_comment"            # comment box (key + "_<item id>")
    ANN_FORM = "ann_form"                  # answer form (key + "_<item id>")
    ANN_SHOW_REASONS = "ann_show_reasons"  # show the flagger's score and reasons to the annotator
    SV_NAME = "sv_name"                    # share popover: the name to save the view under
    SV_REPLACE = "sv_replace"              # share popover: replace a saved view of that name
    SV_SAVED = "_sv_saved"                 # ("ok", name) | ("error", message) of the last "Save view"
    ANN_ROLE = "_ann_role"                 # "annotator" once a session opened an annotator link (ui/roles.py)
    ANN_GUIDE = "ann_guide"                # researcher: the batch's guidelines (text area; + "_<batch id>")
    ANN_ASSIGNEES = "ann_assignees"        # researcher: annotator names to deal the batch to
    ANN_OVERLAP = "ann_overlap"            # researcher: share of items judged by several annotators
    ANN_PER_SHARED = "ann_per_shared"      # researcher: annotators per shared item

    # ---- Validate page (views/validate.py) ----
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
HUB_PREFIX = "hf:"
"""Encoder spec prefix of a model named by its Hugging Face id, loaded offline from the local cache."""
UPLOAD_PREFIX = "upload:"

COLOUR_OPTIONS = ("role", "source", "c", "h", "rho", "w", "fn_score")
"""What the Geometry view can colour points by."""

RANGES: dict[str, tuple[int, int]] = {"cap": (50, 20_000)}
"""Allowed range of each numeric view setting (the widget's bounds; a share link outside them is clamped). The
metric settings' ranges are in the registry (``Setting.ui_range``)."""
STEPS = {"cap": 50}


# ------------------------------------------------------------------------------------------------ metric settings


def ui_settings() -> tuple[Setting, ...]:
    """The registry settings the dashboard holds: those with a sidebar widget or a share-link parameter."""
    return tuple(s for s in registry() if s.label is not None or s.url is not None)


def widget_key(s: Setting | str) -> str:
    """Session-state (and widget) key of a metric setting: its name, ``<name>_d`` for a per-dimension one."""
    s = setting(s) if isinstance(s, str) else s
    return f"{s.name}_d" if s.per_dim else s.name


def ui_symbol(s: Setting) -> str:
    """How captions and notes name the dashboard's value of a setting: τ, N, κ/d …"""
    return f"{s.short}/d" if s.per_dim else s.short


def ui_default(s: Setting) -> Any:
    """The dashboard's value of a setting's default (κ/d = 2 for κ = None)."""
    return s.per_dim_default if s.per_dim else s.default


def ui_coerce(s: Setting, value: Any) -> Any:
    """A widget, session or share-link value as the setting's type (per-dimension values are floats)."""
    if value is None:
        return None
    if s.per_dim or s.kind == "float":
        return float(value)
    return int(value) if s.kind == "int" else str(value)


def to_config_value(s: Setting, value: Any, dim: int) -> Any:
    """The :class:`ScoreConfig` value of a dashboard value, for embedding dimension ``dim``. The one conversion of
    a per-dimension value: its default step is ``None`` (the library default κ = d/ε²), any other is value·d."""
    if s.per_dim:
        return None if value == s.per_dim_default else float(value) * dim
    return value


def nearest_option(s: Setting, x: float) -> float:
    """The step of a per-dimension slider nearest to ``x`` > 0 (on a log scale)."""
    return min(s.options, key=lambda o: abs(math.log(o) - math.log(x)))


class MetricState(Mapping[str, Any]):
    """The metric settings as the dashboard holds them: ``{setting name: value}`` for every :func:`ui_settings`
    entry (defaults for those not given), a per-dimension one as its value per dimension (κ/d). Immutable and
    hashable; equal when the values are.

        m = MetricState(tau=0.1, kappa=4.0)     # κ/d = 4
        m["tau"], m.replace(alpha=0.0), m.config_for(384).kappa   # 0.1, …, 1536.0
    """

    __slots__ = ("_items",)

    def __init__(self, values: Mapping[str, Any] | None = None, /, **changes: Any) -> None:
        given = {**(values or {}), **changes}
        settings = ui_settings()
        unknown = sorted(set(given) - {s.name for s in settings})
        if unknown:
            raise TypeError(f"not a dashboard setting: {', '.join(unknown)}")
        items = tuple((s.name, ui_coerce(s, given[s.name]) if s.name in given else ui_default(s)) for s in settings)
        object.__setattr__(self, "_items", items)

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to {name!r}: a MetricState is immutable")

    def __getitem__(self, name: str) -> Any:
        for key, value in self._items:
            if key == name:
                return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetricState) and self._items == other._items

    def __hash__(self) -> int:
        return hash(self._items)

    def __reduce__(self) -> tuple:
        return (MetricState, (dict(self._items),))

    def __repr__(self) -> str:
        return "MetricState(" + ", ".join(f"{k}={v!r}" for k, v in self._items) + ")"

    def replace(self, **changes: Any) -> "MetricState":
        return MetricState(dict(self._items), **changes)

    def config_for(self, dim: int) -> ScoreConfig:
        """:class:`ScoreConfig` for embedding dimension ``dim`` (settings the dashboard does not hold: defaults)."""
        return config_class()(**{s.name: to_config_value(s, self[s.name], dim) for s in ui_settings()})


# ------------------------------------------------------------------------------------------------ the view


@dataclass(frozen=True)
class ViewState:
    """Everything a share link reproduces. ``sources=()`` means every source."""

    dataset: str = DATASET_DEMO
    encoder: str = ENCODER_DEFAULT
    metric: MetricState = field(default_factory=MetricState)
    sources: tuple[str, ...] = ()
    view: str = ""
    why_a: str = ""
    why_b: str = ""
    colour: str = "role"
    query: str = ""
    cap: int = CAP_PER_SOURCE

    def replace(self, **changes: Any) -> "ViewState":
        return dataclasses.replace(self, **changes)

    def config_for(self, dim: int) -> ScoreConfig:
        """:class:`ScoreConfig` of the metric settings for embedding dimension ``dim``."""
        return self.metric.config_for(dim)


# view field ↔ widget key (the dataset and encoder are derived from several widgets, see the sidebar; the metric
# settings' keys are widget_key(setting))
FIELD_KEYS: dict[str, str] = {
    "sources": K.SOURCES, "view": K.VIEW, "why_a": K.WHY_A, "why_b": K.WHY_B, "colour": K.COLOUR, "query": K.QUERY,
    "cap": K.CAP, "dataset": K.DATASET,
}


def view_from_state(state: Mapping[str, Any]) -> ViewState:
    """The :class:`ViewState` held in a session-state mapping (defaults for what is missing)."""
    values: dict[str, Any] = {}
    for name, key in FIELD_KEYS.items():
        if key in state and state[key] is not None:
            values[name] = state[key]
    if "sources" in values:
        values["sources"] = tuple(values["sources"])
    if "cap" in values:
        values["cap"] = int(values["cap"])
    kind = state.get(K.ENC_KIND, "default")
    if kind == "tfidf":
        values["encoder"] = ENCODER_TFIDF
    elif kind == "path" and state.get(K.ENC_PATH):
        values["encoder"] = PATH_PREFIX + str(state[K.ENC_PATH]).strip()
    elif kind == "name" and state.get(K.ENC_NAME):
        values["encoder"] = HUB_PREFIX + str(state[K.ENC_NAME]).strip()
    else:
        values["encoder"] = ENCODER_DEFAULT
    values["metric"] = MetricState({s.name: state[widget_key(s)] for s in ui_settings()
                                    if state.get(widget_key(s)) is not None})
    return ViewState(**values)


def view_to_state(view: ViewState, state: MutableMapping[str, Any]) -> None:
    """Write a :class:`ViewState` into the widget keys (used once per session, from the URL)."""
    for name, key in FIELD_KEYS.items():
        value = getattr(view, name)
        state[key] = list(value) if name == "sources" else value
    for s in ui_settings():
        state[widget_key(s)] = view.metric[s.name]
    ds = view.dataset
    if ds.startswith(PATH_PREFIX):
        state[K.DS_MODE], state[K.DS_PATH] = "path", ds[len(PATH_PREFIX):]
    elif ds.startswith(UPLOAD_PREFIX):
        state[K.DS_MODE] = "upload"
    else:
        state[K.DS_MODE] = "demo"
    enc = view.encoder
    if enc == ENCODER_TFIDF:
        state[K.ENC_KIND] = "tfidf"
    elif enc.startswith(PATH_PREFIX):
        state[K.ENC_KIND], state[K.ENC_PATH] = "path", enc[len(PATH_PREFIX):]
    elif enc.startswith(HUB_PREFIX):
        state[K.ENC_KIND], state[K.ENC_NAME] = "name", enc[len(HUB_PREFIX):]
    else:
        state[K.ENC_KIND] = "default"
