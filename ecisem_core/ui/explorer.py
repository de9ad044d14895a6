"""The Triplet explorer's logic (pure: pandas/numpy in, tables and HTML out; no Streamlit import).

* :func:`explorer_table` — the scored triplets with their text ids (``qi``, ``pi``, ``ni``: rows of the
  prepared embedding matrix), the prepared row, the map point of their negative and how many sources share it;
  text columns categorical, so a search reads each distinct text once.
* :func:`map_points` — one point per (negative text, source) occurrence, placed at that text's 2-D layout
  position; a text mined by several sources is one point per source (stacked), each saying "shared by n sources".
* :class:`FilterSpec` + :func:`filter_triplets` — every filter of the page (search, sources, flags, the
  annotators' verdict, ranges, the map selection) in one vectorised function; :func:`verdict_states` labels each
  row with its consensus verdict.
* :func:`sample_points` (the map's point budget), :func:`nearest` (cosine neighbours of a text),
  :func:`text_places` and :func:`card_html` (the detail card, every user text escaped).
"""
from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ecisem_core.curation.fn_model import labels_from_verdicts
from ecisem_core.curation.reasons import SEP, reason_code

TERMS: tuple[str, ...] = ("s_qp", "s_qn", "s_pn", "c", "h", "rho", "w", "fn_score")
"""Numeric columns the range filters apply to, in display order."""
SYMBOLS: dict[str, str] = {"s_qp": "s_qp", "s_qn": "s_qn", "s_pn": "s_pn", "c": "c", "h": "h", "rho": "ρ", "w": "w",
                           "fn_score": "FN score"}
TERM_LABELS: dict[str, str] = {"s_qp": "s_qp", "s_qn": "s_qn", "s_pn": "s_pn", "c": "c consistency",
                               "h": "h locality", "rho": "ρ residuality", "w": "w weight", "fn_score": "FN score"}
BOUNDS: dict[str, tuple[float, float]] = {"s_qp": (-1.0, 1.0), "s_qn": (-1.0, 1.0), "s_pn": (-1.0, 1.0),
                                          "c": (0.0, 1.0), "h": (0.0, 1.0), "rho": (0.0, 1.0), "w": (0.0, 1.0),
                                          "fn_score": (0.0, 1.0)}
"""The natural range of each term (cosines in [−1, 1], the rest in [0, 1]); a slider spans at least this."""
TEXTS: tuple[str, ...] = ("query", "positive", "negative")
MAP_POINTS = 20_000
"""Default most points drawn on the map (a seeded sample beyond it)."""
SNIPPET = 140
RING = 0.006
"""Radius (share of the layout's extent) of the ring on which a shared negative's per-source points sit."""
HOVER_TEXT, HOVER_QUERY = 110, 70
"""Characters of the negative and of the query in a map point's hover (the map's payload grows with them)."""


# ---------------------------------------------------------------------------------------------------- the table


def explorer_table(triplets: pd.DataFrame, qi: np.ndarray, pi: np.ndarray, ni: np.ndarray,
                   rows: np.ndarray | None = None) -> pd.DataFrame:
    """``triplets`` (``ScoreResult.triplets``) with ``row`` (its prepared row; default 0..n-1), text ids
    ``qi``/``pi``/``ni`` (aligned with it), ``point`` (its (negative text, source) occurrence) and ``shared_by``
    (sources that mined the same negative text). Query, positive and negative become categorical."""
    t = triplets.reset_index(drop=True).copy()
    n = len(t)
    t["row"] = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    t["qi"], t["pi"], t["ni"] = (np.asarray(a, dtype=np.int64) for a in (qi, pi, ni))
    codes, names = pd.factorize(t["source"].astype(str), sort=True)
    pair = t["ni"].to_numpy() * max(len(names), 1) + codes
    uniq, point = np.unique(pair, return_inverse=True)
    text_of_point = uniq // max(len(names), 1)
    texts, per_text = np.unique(text_of_point, return_counts=True)
    t["point"] = point.astype(np.int64)
    t["shared_by"] = per_text[np.searchsorted(texts, text_of_point)][point].astype(np.int64)
    for col in TEXTS:
        t[col] = pd.Categorical(t[col].astype(str))
    return t


def _snippet(values: pd.Series, width: int = SNIPPET) -> pd.Series:
    """First ``width`` characters of each text, whitespace collapsed, HTML-escaped (vectorised; a categorical
    column is processed once per distinct text it uses)."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        used, inverse = np.unique(codes, return_inverse=True)
        cats = pd.Series(values.cat.categories.astype(str)).to_numpy()
        short = _snippet(pd.Series(np.where(used >= 0, cats[np.maximum(used, 0)], ""), dtype=str), width)
        return pd.Series(short.to_numpy()[inverse.ravel()], index=values.index)
    s = values.astype(str).str.slice(0, 3 * width).str.replace(r"\s+", " ", regex=True).str.strip()
    long = s.str.len() > width
    s = s.where(~long, s.str.slice(0, width - 1) + "…")
    for a, b in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#x27;")):
        s = s.str.replace(a, b, regex=False)
    return s


def map_points(table: pd.DataFrame, layout: pd.DataFrame, spread: float = RING) -> pd.DataFrame:
    """One row per ``point`` of :func:`explorer_table` (index = point id, column ``pid``): ``ni``, ``source``,
    ``x``, ``y`` (NaN when the text is not in ``layout``; ``on_map`` says which are), ``n_triplets`` (triplets of
    that source with that negative), ``shared_by``, the first such triplet's ``row``, its terms and the escaped
    ``label`` (negative) and ``query_label``. ``layout`` has ``text_index``, ``x``, ``y`` (duplicates allowed). The points of a text shared by
    several sources sit on a ring of radius ``spread`` × the layout's extent around its place (one per source, in
    source order), so no source's colour hides another's."""
    first = table.drop_duplicates("point").sort_values("point")
    pts = pd.DataFrame({"pid": first["point"].to_numpy(), "ni": first["ni"].to_numpy(),
                        "source": first["source"].astype(str).to_numpy(), "row": first["row"].to_numpy(),
                        "shared_by": first["shared_by"].to_numpy()})
    pts["n_triplets"] = np.bincount(table["point"].to_numpy(), minlength=len(pts))[: len(pts)]
    for col in ("c", "h", "rho", "w", "fn_score"):
        pts[col] = first[col].to_numpy(dtype=float) if col in first.columns else np.nan
    lay = layout.drop_duplicates("text_index").sort_values("text_index")
    ids = lay["text_index"].to_numpy()
    pos = np.clip(np.searchsorted(ids, pts["ni"].to_numpy()), 0, max(len(ids) - 1, 0))
    hit = (ids[pos] == pts["ni"].to_numpy()) if len(ids) else np.zeros(len(pts), dtype=bool)
    x = np.where(hit, lay["x"].to_numpy(dtype=float)[pos] if len(ids) else np.nan, np.nan)
    y = np.where(hit, lay["y"].to_numpy(dtype=float)[pos] if len(ids) else np.nan, np.nan)
    # a text shared by n sources: its n points on a small ring around its place, so every colour shows
    ni = pts["ni"].to_numpy()  # sorted: points are numbered by (text, source)
    _, start = np.unique(ni, return_index=True)
    slot = np.arange(len(pts)) - np.repeat(start, np.diff(np.append(start, len(pts))))
    shared = pts["shared_by"].to_numpy()
    span = float(np.nanmax([np.ptp(x[hit]), np.ptp(y[hit])])) if hit.any() else 0.0
    radius = np.where(shared > 1, spread * span, 0.0)
    angle = 2 * np.pi * slot / np.maximum(shared, 1)
    pts["x"], pts["y"] = x + radius * np.cos(angle), y + radius * np.sin(angle)
    pts["on_map"] = hit
    pts["label"] = _snippet(first["negative"], HOVER_TEXT).to_numpy()
    pts["query_label"] = _snippet(first["query"], HOVER_QUERY).to_numpy()
    return pts.set_index(pd.RangeIndex(len(pts)))


def sample_points(points: pd.DataFrame, visible: np.ndarray | None, limit: int = MAP_POINTS, seed: int = 0,
                  keep: int | None = None) -> pd.DataFrame:
    """The points to draw: those ``on_map`` among point ids ``visible`` (all when ``None``), at most ``limit``
    (a ``default_rng(seed)`` sample, in point order), always including point ``keep`` when it is drawable."""
    mask = points["on_map"].to_numpy(bool).copy()
    if visible is not None:
        wanted = np.zeros(len(points), dtype=bool)
        wanted[np.asarray(visible, dtype=np.int64)] = True
        mask &= wanted
    idx = np.flatnonzero(mask)
    if idx.size > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=int(limit), replace=False))
        if keep is not None and mask[keep] and keep not in idx:
            idx = np.sort(np.append(idx[:-1] if limit else idx, keep))
    return points.iloc[idx]


# ---------------------------------------------------------------------------------------------------- filters


@dataclass(frozen=True)
class FilterSpec:
    """Everything the page filters by. ``sources``/``points`` ``None`` = no restriction; ``fn_flag``/``junk_flag``
    ``None`` = either, ``True`` = flagged only, ``False`` = not flagged; ``ranges`` = (column, low, high) with both
    ends included; ``search`` = case-insensitive substring of the query, the positive or the negative."""

    search: str = ""
    sources: tuple[str, ...] | None = None
    fn_flag: bool | None = None
    junk_flag: bool | None = None
    ranges: tuple[tuple[str, float, float], ...] = ()
    points: tuple[int, ...] | None = None
    verdict: str | None = None

    def without_points(self) -> "FilterSpec":
        return dataclasses.replace(self, points=None)


VERDICT_STATES: tuple[str, ...] = ("false negative", "true negative", "undecided", "not judged")
"""A row's consensus verdict (:func:`verdict_states`; the :class:`FilterSpec` ``verdict`` values)."""


def verdict_states(table: pd.DataFrame, verdicts: pd.DataFrame) -> pd.Series:
    """Per row, the annotators' consensus on its (query_id, negative_id) pair over every batch: "false negative"
    or "true negative" (more verdicts one way), "undecided" (a tie, or only "unsure"), "not judged"."""
    out = np.full(len(table), VERDICT_STATES[3], dtype=object)
    if len(table) and not verdicts.empty and {"query_id", "negative_id"} <= set(table.columns):
        label = labels_from_verdicts(table, verdicts, undecided=-1.0)
        out[label == -1.0] = VERDICT_STATES[2]
        out[label == 1.0] = VERDICT_STATES[0]
        out[label == 0.0] = VERDICT_STATES[1]
    return pd.Series(pd.Categorical(out, categories=VERDICT_STATES), index=table.index, name="verdict")


def contains(column: pd.Series, needle: str) -> np.ndarray:
    """Case-insensitive substring test of a text column (a categorical one is tested once per distinct text)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        cats = pd.Series(column.cat.categories.astype(str))
        hit = np.append(cats.str.contains(needle, case=False, regex=False).to_numpy(bool), False)
        return hit[column.cat.codes.to_numpy()]  # code −1 (missing) → the appended False
    return column.astype(str).str.contains(needle, case=False, regex=False).to_numpy(bool)


def search_mask(table: pd.DataFrame, text: str) -> np.ndarray:
    """Rows whose query, positive or negative contains ``text`` (case-insensitive); all rows for blank text."""
    needle = text.strip()
    mask = np.zeros(len(table), dtype=bool) if needle else np.ones(len(table), dtype=bool)
    if needle:
        for col in TEXTS:
            mask |= contains(table[col], needle)
    return mask


def filter_mask(table: pd.DataFrame, spec: FilterSpec) -> np.ndarray:
    """Boolean mask of the rows that pass every filter of ``spec``."""
    mask = search_mask(table, spec.search)
    if spec.sources is not None:
        mask &= table["source"].astype(str).isin(spec.sources).to_numpy()
    for col, want in (("fn_flag", spec.fn_flag), ("junk_flag", spec.junk_flag)):
        if want is not None:
            mask &= table[col].to_numpy(bool) == want
    if spec.verdict is not None:
        mask &= (table["verdict"] == spec.verdict).to_numpy(bool) if "verdict" in table.columns else \
            np.full(len(table), spec.verdict == VERDICT_STATES[3])
    for col, lo, hi in spec.ranges:
        v = table[col].to_numpy(dtype=float)
        mask &= (v >= lo) & (v <= hi)  # NaN fails both
    if spec.points is not None:
        wanted = np.zeros(int(table["point"].max()) + 1 if len(table) else 0, dtype=bool)
        ids = np.asarray(spec.points, dtype=np.int64)
        wanted[ids[(ids >= 0) & (ids < wanted.size)]] = True
        mask &= wanted[table["point"].to_numpy()] if wanted.size else False
    return mask


def filter_triplets(table: pd.DataFrame, spec: FilterSpec) -> pd.DataFrame:
    """The rows of ``table`` that pass every filter of ``spec``, in table order (index kept)."""
    return table[filter_mask(table, spec)]


def range_filters(values: Mapping[str, tuple[float, float]], bounds: Mapping[str, tuple[float, float]],
                  tol: float = 1e-9) -> tuple[tuple[str, float, float], ...]:
    """The ``ranges`` of a :class:`FilterSpec` from slider values: only those narrower than their bounds."""
    out = []
    for col, (lo, hi) in values.items():
        blo, bhi = bounds[col]
        if lo > blo + tol or hi < bhi - tol:
            out.append((col, float(lo), float(hi)))
    return tuple(out)


def slider_bounds(table: pd.DataFrame, step: float = 0.01) -> dict[str, tuple[float, float]]:
    """Slider range per term: its natural range, widened (to the step) if the data go beyond it."""
    out = {}
    for col in TERMS:
        lo, hi = BOUNDS[col]
        if col in table.columns and len(table):
            v = table[col].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if v.size:
                lo = min(lo, float(np.floor(v.min() / step) * step))
                hi = max(hi, float(np.ceil(v.max() / step) * step))
        out[col] = (round(lo, 6), round(hi, 6))
    return out


# ---------------------------------------------------------------------------------------------------- the card


def nearest(matrix: np.ndarray, index: int, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``matrix`` most cosine-similar to row ``index`` (itself excluded), most similar first:
    (row indices, cosines)."""
    m = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(m, axis=1)
    sims = (m @ m[index]) / np.maximum(norms * norms[index], 1e-12)
    sims[index] = -np.inf
    k = int(min(k, m.shape[0] - 1))
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    top = np.argpartition(-sims, k - 1)[:k]
    top = top[np.lexsort((top, -sims[top]))]
    return top.astype(np.int64), sims[top]


def text_places(table: pd.DataFrame, index: int) -> str:
    """Where text ``index`` occurs in ``table``: its roles and, as a negative, the sources ("negative in bm25,
    llm · positive ×2")."""
    parts = []
    neg = table["ni"].to_numpy() == index
    if neg.any():
        parts.append("negative in " + ", ".join(sorted(table.loc[neg, "source"].astype(str).unique())))
    for col, role in (("qi", "query"), ("pi", "positive")):
        n = int((table[col].to_numpy() == index).sum())
        if n:
            parts.append(role + (f" ×{n}" if n > 1 else ""))
    return " · ".join(parts) or "not in the selected sources"


def neighbours_table(table: pd.DataFrame, matrix: np.ndarray, texts: Sequence[str], index: int,
                     k: int = 5) -> pd.DataFrame:
    """The ``k`` nearest texts of text ``index``: ``text_index``, ``cosine``, ``text``, ``where``."""
    idx, cos = nearest(matrix, index, k)
    return pd.DataFrame({"text_index": idx, "cosine": cos.astype(float), "text": [str(texts[i]) for i in idx],
                         "where": [text_places(table, int(i)) for i in idx]})


def _esc(value: object) -> str:
    return html.escape(str(value))


def _num(value: object) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "–"
    return "–" if not np.isfinite(v) else f"{v:.3f}"


def card_html(row: Mapping[str, object], neighbours: pd.DataFrame | None = None, of: str = "negative",
              sources: Sequence[str] = ()) -> str:
    """The detail card of one triplet (a row of :func:`explorer_table`): source, flags, every term, the FN
    reasons, the three texts and the nearest neighbours of its ``of`` text. Every text is HTML-escaped."""
    pills = [f'<span class="eci-pill">{_esc(row.get("source", ""))}</span>']
    if bool(row.get("fn_flag")):
        pills.append('<span class="eci-pill warn">flagged false negative</span>')
    if bool(row.get("junk_flag")):
        pills.append('<span class="eci-pill warn">junk</span>')
    shared = int(row.get("shared_by", 1) or 1)
    pills.append(f'<span class="eci-pill">negative shared by {shared} source{"s" if shared != 1 else ""}'
                 + (f": {_esc(', '.join(sources))}" if sources else "") + "</span>")
    terms = " · ".join(f"{SYMBOLS[t]} <b>{_num(row.get(t))}</b>" for t in TERMS)
    reasons = split_reasons(str(row.get("fn_reasons") or ""))
    reason_html = "".join(f'<span class="eci-pill warn">{_esc(r)}</span>' for r in reasons) or \
        '<span class="eci-pill">none</span>'
    texts = "".join(f'<div class="lbl">{label}</div><div class="txt">{_esc(row.get(label, ""))}</div>'
                    for label in TEXTS)
    near = ""
    if neighbours is not None:
        items = "".join(f'<li><b>{c:.3f}</b> {_esc(t)} <span class="meta">({_esc(w)})</span></li>'
                        for c, t, w in zip(neighbours["cosine"], neighbours["text"], neighbours["where"]))
        near = (f'<div class="lbl">{len(neighbours)} nearest texts to the {_esc(of)} (encoder cosine)</div>'
                f'<ol class="txt" style="padding-left:1.2rem;margin:0">{items}</ol>')
    return (f'<div class="eci-card" data-testid="eciExplorerCard"><div class="meta">{"".join(pills)}</div>'
            f'<div class="meta">{terms}</div><div class="lbl">FN evidence</div><div class="meta">{reason_html}'
            f'</div>{texts}{near}</div>')


FLAG_PARAM_VALUES = ("yes", "no")
"""Values of the flagged / junk filters in a link (``any`` is the default and is left out)."""
LINK_POINTS_MAX = 2_000
"""Most map-selected points a link carries (a larger selection is left out of the link, and the page says so)."""


def filters_to_params(search: str, sources: Sequence[str] | None, fn: str, junk: str,
                      ranges: Sequence[tuple[str, float, float]] = (), points: Sequence[int] | None = None,
                      verdict: str | None = None) -> dict[str, str | list[str]]:
    """The explorer's filters as query parameters (share.PAGE_PARAMS["explorer"]); defaults are left out.
    ``xr`` = ``column:low:high`` per narrowed range, ``xp`` = the map selection's point ids, comma-separated (up
    to :data:`LINK_POINTS_MAX`), ``xv`` = the verdict filter.

    >>> filters_to_params("tulip", ["bm25"], "yes", "any", [("s_qn", 0.5, 0.9)], [3, 1])
    {'xq': 'tulip', 'xs': ['bm25'], 'xf': 'yes', 'xr': ['s_qn:0.5:0.9'], 'xp': '1,3'}
    """
    out: dict[str, str | list[str]] = {}
    if search.strip():
        out["xq"] = search.strip()
    if sources:
        out["xs"] = list(sources)
    if fn in FLAG_PARAM_VALUES:
        out["xf"] = fn
    if junk in FLAG_PARAM_VALUES:
        out["xj"] = junk
    if ranges:
        out["xr"] = [f"{col}:{lo:.6g}:{hi:.6g}" for col, lo, hi in ranges]
    if points is not None and 0 < len(points) <= LINK_POINTS_MAX:
        out["xp"] = ",".join(str(int(p)) for p in sorted(set(points)))
    if verdict in VERDICT_STATES:
        out["xv"] = verdict
    return out


def _range_param(text: str) -> tuple[str, float, float] | None:
    parts = str(text).split(":")
    if len(parts) != 3 or parts[0] not in TERMS:
        return None
    try:
        lo, hi = float(parts[1]), float(parts[2])
    except ValueError:
        return None
    return (parts[0], lo, hi) if np.isfinite(lo) and np.isfinite(hi) and lo <= hi else None


def filters_from_params(params: Mapping[str, Sequence[str]], sources: Sequence[str]) -> dict[str, object]:
    """Filter values from query parameters (lists of values per name): a search, the known sources (unknown ones
    dropped), the flagged / junk choice, ranges of known terms, the map selection, the verdict; anything
    unreadable is left at its default."""
    out: dict[str, object] = {}
    q = list(params.get("xq") or [])
    if q and q[-1].strip():
        out["search"] = q[-1].strip()[:500]
    chosen = [x for x in params.get("xs") or [] if x in set(sources)]
    if chosen:
        out["sources"] = list(dict.fromkeys(chosen))
    for name, key in (("fn", "xf"), ("junk", "xj")):
        v = list(params.get(key) or [])
        if v and v[-1] in FLAG_PARAM_VALUES:
            out[name] = v[-1]
    ranges = {r[0]: (r[1], r[2]) for r in map(_range_param, params.get("xr") or []) if r is not None}
    if ranges:
        out["ranges"] = ranges
    xp = list(params.get("xp") or [])
    if xp:
        ids = [int(t) for t in xp[-1].split(",")[: LINK_POINTS_MAX] if t.strip().isdigit()]
        if ids:
            out["points"] = tuple(sorted(set(ids)))
    xv = list(params.get("xv") or [])
    if xv and xv[-1] in VERDICT_STATES:
        out["verdict"] = xv[-1]
    return out


def split_reasons(reasons: str) -> list[str]:
    """The reason texts of an ``fn_reasons`` string: split at the separator, except where a piece starts with no
    reason name (the ``"; s_pn …"`` inside the numbers of "combined evidence"), which stays with its reason."""
    out: list[str] = []
    for piece in str(reasons or "").split(SEP):
        if out and reason_code(piece.split(" (", 1)[0].strip()) is None:
            out[-1] += SEP + piece
        elif piece.strip():
            out.append(piece.strip())
    return out
