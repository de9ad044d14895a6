"""Display tables of the dashboard and the plain explanation of each column (pure pandas; no metric maths)."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd

from ecisem_core.metric.uncertainty import ranks_desc

COLUMN_HELP: dict[str, str] = {
    "rank": "Rank by ECI_sem among the selected sources (1 = most useful negatives by this score).",
    "source": "Where the negatives come from (BM25, dense mining, LLM, a hybrid…).",
    "eci_sem": "ECI_sem = (1/κ)·log det(I + κM), M = mean of w·r̂r̂ᵀ over the sampled triplets: weighted, "
               "diverse residual information. Higher is better. Our construction (see the README).",
    "ci": "95% interval of ECI_sem: bootstrap over queries (B resamples), centred on the estimate.",
    "eci_sem_per_dim": "ECI_sem divided by the embedding dimension d (comparable across encoders).",
    "info": "tr M = mean weight w = c^α·h^β·ρ^γ: the first-order value, ignoring redundancy.",
    "diversity": "ECI_sem / info ∈ (0, 1]: 1 when residual directions are spread, low when redundant.",
    "eci_v1": "Classic ECI (paper v1, exact): ln(1+K) × harmonic mean of hardness S_n and margin Δ_max.",
    "n": "Triplets of this source in the data.",
    "n_sampled": "Triplets sampled for ECI_sem (N per source, fixed seed).",
    "fn_rate": "Share of this source's triplets flagged as likely false negatives (fixed flagger settings).",
    "stability": "Share of jittered settings (τ and exponents ×0.5–1.5) under which the source keeps its rank.",
}
"""Tooltip of each leaderboard column."""

STABLE, SHAKY = 0.8, 0.5
"""Stability badge thresholds: ≥ STABLE "stable", ≥ SHAKY "shaky", below "fragile"."""
PENDING = "computing…"
"""Shown in place of a number that the background job has not delivered yet."""


def _ci_text(lo: float, hi: float) -> str:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "—"
    return f"{_sig(lo)} – {_sig(hi)}"


def leaderboard(sources: pd.DataFrame, unc: pd.DataFrame | None) -> pd.DataFrame:
    """The leaderboard table: the instant columns of ``sources`` (``ScoreResult.sources`` without uncertainty)
    plus the CI text and stability share from ``unc`` when it is the result for the same settings (else
    :data:`PENDING` and NaN)."""
    t = sources.copy()
    if unc is not None:
        u = unc.set_index("source").reindex(t["source"])
        t["ci"] = [_ci_text(lo, hi) for lo, hi in zip(u["ci_low"], u["ci_high"])]
        t["stability"] = u["stability"].to_numpy(dtype=float)
    else:
        t["ci"] = PENDING
        t["stability"] = np.nan
    return t[["rank", "source", "eci_sem", "ci", "eci_sem_per_dim", "info", "diversity", "eci_v1", "n",
              "n_sampled", "fn_rate", "stability"]]


def csv_table(sources: pd.DataFrame, unc: pd.DataFrame | None, contrib: pd.DataFrame | None) -> pd.DataFrame:
    """The table written by the CSV download: the columns of ``sources.csv`` (README, "Command line") and the extras, with the
    interval/stability columns from ``unc`` and the φ columns from ``contrib`` when computed (empty otherwise)."""
    t = sources.copy()
    for other, cols in ((unc, ["ci_low", "ci_high", "stability"]), (contrib, ["phi_c", "phi_h", "phi_rho", "phi_div", "eci_sem_no_fn", "fn_share",
                                             "rank_no_fn"])):
        if other is not None:
            o = other.set_index("source").reindex(t["source"])
            for c in cols:
                if c in o.columns:
                    t[c] = o[c].to_numpy()
    return t


def rank_arrow(change: float) -> str:
    """A rank change (old rank − new rank) as text: "↑ 2" (moves up), "↓ 1", "=" or "—" (unknown)."""
    if not np.isfinite(change):
        return "—"
    return "=" if change == 0 else (f"↑ {int(change)}" if change > 0 else f"↓ {int(-change)}")


def fn_what_if(contrib: pd.DataFrame, judged: dict[str, float] | None = None) -> pd.DataFrame:
    """The false-negative what-if: each source's rank and ECI_sem as scored, and again with its flagged triplets
    left out (``eci_sem_no_fn``, ``rank_no_fn`` of the contributions result), the rank change as an arrow and the
    share of ECI_sem that came from flagged triplets (``fn_share`` = 1 − ECI_sem without / ECI_sem). ``judged``:
    each source's ECI_sem without the triplets the annotators judged false negatives
    (:func:`ecisem_core.score.eci_sem_without`) — adds that rank, its change and that share."""
    t = contrib.sort_values("rank")
    change = t["rank"].to_numpy(dtype=float) - t["rank_no_fn"].to_numpy(dtype=float)  # > 0: moves up
    arrows = [rank_arrow(c) for c in change]
    out = pd.DataFrame({
        "source": t["source"].astype(str).to_numpy(),
        "rank": t["rank"].to_numpy(),
        "rank without flagged": t["rank_no_fn"].to_numpy(),
        "change": arrows,
        "ECI_sem": t["eci_sem"].to_numpy(dtype=float),
        "ECI_sem without flagged": t["eci_sem_no_fn"].to_numpy(dtype=float),
        "share from flagged": t["fn_share"].to_numpy(dtype=float),
        "FN rate": t["fn_rate"].to_numpy(dtype=float),
    })
    if judged:
        score = t["eci_sem"].to_numpy(dtype=float)
        without = np.array([judged.get(str(n), np.nan) for n in t["source"]], dtype=float)
        rank = ranks_desc(without) if np.isfinite(without).all() else np.full(len(t), np.nan)
        out["rank without judged FNs"] = rank
        out["change (judged)"] = [rank_arrow(c) for c in t["rank"].to_numpy(dtype=float) - rank]
        out["ECI_sem without judged FNs"] = without
        with np.errstate(divide="ignore", invalid="ignore"):
            out["share from judged FNs"] = np.where(score > 0, 1.0 - without / score, np.nan)
    return out


# ----------------------------------------------------------------------------------------- HTML leaderboard
#
# The leaderboard is an HTML table rather than ``st.dataframe``: the data grid takes 200–300 ms more to redraw
# after a slider move (measured in Chromium, benchmarks/bench_dashboard.py), and the slider budget is 300 ms.
# Headers sort on click (a few lines of our own script: no user text inside it), and carry the column help as a
# tooltip. Every cell text is html-escaped.

BOARD_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("rank", "Rank", "rank"), ("source", "Source", "source"), ("eci_sem", "ECI_sem", "eci_sem"),
    ("ci", "95% CI", "ci"), ("eci_sem_per_dim", "ECI_sem / d", "eci_sem_per_dim"), ("info", "info", "info"),
    ("diversity", "diversity", "diversity"), ("eci_v1", "classic ECI", "eci_v1"), ("n", "triplets", "n"),
    ("n_sampled", "sampled", "n_sampled"), ("fn_rate", "FN rate", "fn_rate"),
    ("stability", "rank stability", "stability"),
)
"""(column of :func:`leaderboard`, header, key of :data:`COLUMN_HELP`)."""

BOARD_CSS = """<style>
.eci-board-wrap {overflow-x: auto; border: 1px solid #E5E7EB; border-radius: 8px; margin: 0.25rem 0 0.75rem;}
table.eci-board {border-collapse: collapse; width: 100%; font-size: 0.88rem; font-variant-numeric: tabular-nums;}
table.eci-board th {background: #F8FAFC; color: #374151; font-weight: 600; text-align: right; padding: 0.5rem 0.55rem;
  border-bottom: 1px solid #E5E7EB; cursor: pointer; white-space: nowrap; user-select: none;}
table.eci-board th:nth-child(2), table.eci-board td:nth-child(2) {text-align: left;}
table.eci-board th[data-dir="asc"]::after {content: " ▲"; font-size: 0.7em;}
table.eci-board th[data-dir="desc"]::after {content: " ▼"; font-size: 0.7em;}
table.eci-board td {padding: 0.42rem 0.55rem; border-bottom: 1px solid #F1F3F5; text-align: right; white-space: nowrap;
  color: #111827;}
table.eci-board tbody tr:last-child td {border-bottom: none;}
table.eci-board tbody tr:hover td {background: #F9FAFB;}
table.eci-board td.src {font-weight: 600;}
table.eci-board .dot {display: inline-block; width: 0.62rem; height: 0.62rem; border-radius: 50%;
  margin-right: 0.45rem; vertical-align: baseline;}
table.eci-board .pending {color: #9CA3AF; font-style: italic;}
table.eci-board .badge {display: inline-block; padding: 0.05rem 0.5rem; border-radius: 999px; font-size: 0.78rem;}
table.eci-board .b-stable {background: #DCFCE7; color: #166534;}
table.eci-board .b-shaky {background: #FEF3C7; color: #92400E;}
table.eci-board .b-fragile {background: #FEE2E2; color: #991B1B;}
</style>"""

SORT_JS = """<script>
document.querySelectorAll('table.eci-board').forEach(function (t) {
  if (t.dataset.sortReady) return;
  t.dataset.sortReady = '1';
  t.querySelectorAll('th').forEach(function (th, i) {
    th.addEventListener('click', function () {
      var body = t.tBodies[0], asc = th.dataset.dir !== 'asc';
      t.querySelectorAll('th').forEach(function (h) { delete h.dataset.dir; });
      th.dataset.dir = asc ? 'asc' : 'desc';
      var rows = Array.prototype.slice.call(body.rows);
      var key = function (r) { return r.cells[i].dataset.v; };
      var num = rows.every(function (r) { return key(r) !== '' && !isNaN(Number(key(r))); });
      rows.sort(function (x, y) {
        var a = key(x), b = key(y), c = num ? Number(a) - Number(b) : String(a).localeCompare(String(b));
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
</script>"""


def _sig(v: float, digits: int = 4) -> str:
    if not np.isfinite(v):
        return "—"
    return f"{v:.{digits}g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.{digits - 1}e}"


def _cell(value, text: str, cls: str = "") -> str:
    sort_key = "" if value is None or (isinstance(value, float) and not np.isfinite(value)) else value
    c = f' class="{cls}"' if cls else ""
    return f'<td{c} data-v="{html.escape(str(sort_key), quote=True)}">{text}</td>'


def _badge(value: float | None) -> str:
    """Rank-stability badge: stable (≥ STABLE), shaky (≥ SHAKY) or fragile; "computing…" while NaN."""
    if value is None or not np.isfinite(value):
        return f'<span class="pending">{PENDING}</span>'
    kind = "stable" if value >= STABLE else "shaky" if value >= SHAKY else "fragile"
    return f'<span class="badge b-{kind}">{kind} · {value:.0%}</span>'


def leaderboard_html(table: pd.DataFrame, colours: dict[str, str]) -> str:
    """The leaderboard (rows of :func:`leaderboard`) as a sortable HTML table with a coloured dot per source and
    stability badges. Source names and every other text are html-escaped."""
    head = "".join(f'<th title="{html.escape(COLUMN_HELP[k], quote=True)}">{html.escape(label)}</th>'
                   for _, label, k in BOARD_COLUMNS)
    rows = []
    stab = table["stability"].to_numpy(dtype=float)
    for i, r in enumerate(table.itertuples(index=False)):
        src = str(r.source)
        ci_pending = r.ci == PENDING
        cells = [
            _cell(int(r.rank), str(int(r.rank))),
            _cell(src, f'<span class="dot" style="background:{html.escape(colours.get(src, "#9CA3AF"))}"></span>'
                       f"{html.escape(src)}", "src"),
            _cell(float(r.eci_sem), _sig(float(r.eci_sem))),
            _cell(None if ci_pending else html.escape(r.ci),
                  f'<span class="pending">{PENDING}</span>' if ci_pending else html.escape(r.ci)),
            _cell(float(r.eci_sem_per_dim), f"{float(r.eci_sem_per_dim):.3e}"),
            _cell(float(r.info), _sig(float(r.info))),
            _cell(float(r.diversity), f"{float(r.diversity):.3f}"),
            _cell(float(r.eci_v1), f"{float(r.eci_v1):.3f}"),
            _cell(int(r.n), f"{int(r.n):,}"),
            _cell(int(r.n_sampled), f"{int(r.n_sampled):,}"),
            _cell(float(r.fn_rate), f"{float(r.fn_rate):.1%}"),
            _cell(float(stab[i]) if np.isfinite(stab[i]) else None, _badge(stab[i])),
        ]
        rows.append(f'<tr data-source="{html.escape(src, quote=True)}">{"".join(cells)}</tr>')
    return (BOARD_CSS + '<div class="eci-board-wrap" data-testid="eciBoard"><table class="eci-board"><thead><tr>'
            + head + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>" + SORT_JS)
