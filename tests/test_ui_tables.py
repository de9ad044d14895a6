"""Leaderboard tables: pending values shown as such, CSV columns, the HTML table escaped and sortable."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecisem_core.score import SOURCE_COLUMNS
from ecisem_core.ui.tables import PENDING, csv_table, leaderboard, leaderboard_html, fn_what_if


def _sources(names=("llm", "<script>alert(1)</script>")):
    n = len(names)
    t = pd.DataFrame({c: np.nan for c in SOURCE_COLUMNS}, index=range(n))
    t["source"] = list(names)
    t["rank"] = np.arange(1, n + 1)
    t["eci_sem"] = [0.05, 0.00004]
    t["eci_sem_per_dim"], t["info"], t["diversity"] = t["eci_sem"] / 384, [0.06, 0.00005], [0.8, 0.9]
    t["eci_v1"], t["n"], t["n_sampled"], t["fn_rate"] = [0.5, 0.1], [300, 20], [300, 20], [0.1, 0.0]
    return t


def test_pending_until_the_uncertainty_of_these_settings_arrives():
    t = leaderboard(_sources(), None)
    assert (t["ci"] == PENDING).all() and t["stability"].isna().all()
    unc = _sources().assign(ci_low=[0.04, 0.00001], ci_high=[0.06, 0.0001], stability=[0.96, 0.4])
    done = leaderboard(_sources(), unc)
    assert done["ci"].tolist() == ["0.04 – 0.06", "1.000e-05 – 1.000e-04"]
    assert done["stability"].tolist() == [0.96, 0.4]


def test_html_table_escapes_and_keeps_order():
    page = leaderboard_html(leaderboard(_sources(), None), {"llm": "#123456"})
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.index('data-source="llm"') < page.index('data-source="&lt;script&gt;')
    assert page.count('<span class="pending">computing…</span>') == 4  # CI and stability of both rows
    assert 'title="ECI_sem = (1/κ)' in page  # column help as the header tooltip
    assert 'data-v="0.05"' in page and "4.000e-05" in page  # numeric sort key, readable small numbers
    assert page.count("<script>") == 1  # only our own sort script


def test_badges_follow_the_thresholds():
    unc = _sources().assign(ci_low=0.0, ci_high=1.0, stability=[0.9, 0.3])
    page = leaderboard_html(leaderboard(_sources(), unc), {})
    assert "b-stable" in page and "b-fragile" in page and "90%" in page


def test_csv_has_the_sources_csv_columns_and_fills_what_is_known():
    src = _sources()
    out = csv_table(src, None, None)
    assert list(out.columns[: len(SOURCE_COLUMNS)]) == SOURCE_COLUMNS and out["ci_low"].isna().all()
    contrib = src.assign(phi_c=[-0.1, -0.2], phi_h=-1.0, phi_rho=-0.1, phi_div=-0.3)
    filled = csv_table(src, src.assign(ci_low=0.01, ci_high=0.09, stability=1.0), contrib)
    assert filled["phi_c"].tolist() == [-0.1, -0.2] and (filled["ci_high"] == 0.09).all()


def test_fn_what_if_ranks_arrows_and_shares():
    contrib = pd.DataFrame({
        "source": ["llm", "bm25", "dense"], "rank": [1, 2, 3], "rank_no_fn": [3, 1, 2],
        "eci_sem": [0.5, 0.4, 0.2], "eci_sem_no_fn": [0.1, 0.4, 0.25], "fn_share": [0.8, 0.0, -0.25],
        "fn_rate": [0.6, 0.0, 0.1],
    })
    t = fn_what_if(contrib.iloc[[2, 0, 1]])  # any row order in: sorted by rank out
    assert t["source"].tolist() == ["llm", "bm25", "dense"]
    assert t["change"].tolist() == ["↓ 2", "↑ 1", "↑ 1"]
    assert t["rank without flagged"].tolist() == [3, 1, 2]
    assert t["share from flagged"].tolist() == [0.8, 0.0, -0.25]
    same = fn_what_if(contrib.assign(rank_no_fn=[1, 2, 3]))
    assert same["change"].tolist() == ["=", "=", "="]


def test_fn_what_if_with_judged_false_negatives():
    contrib = pd.DataFrame({
        "source": ["llm", "bm25", "dense"], "rank": [1, 2, 3], "rank_no_fn": [3, 1, 2],
        "eci_sem": [0.5, 0.4, 0.2], "eci_sem_no_fn": [0.1, 0.4, 0.25], "fn_share": [0.8, 0.0, -0.25],
        "fn_rate": [0.6, 0.0, 0.1],
    })
    t = fn_what_if(contrib, {"llm": 0.3, "bm25": 0.4, "dense": 0.2})
    assert t["rank without judged FNs"].tolist() == [2, 1, 3]  # 0.4 > 0.3 > 0.2
    assert t["change (judged)"].tolist() == ["↓ 1", "↑ 1", "="]
    assert t["share from judged FNs"].tolist() == pytest.approx([0.4, 0.0, 0.0])  # 1 − 0.3/0.5, 1 − 0.4/0.4, …
    assert "rank without judged FNs" not in fn_what_if(contrib, None).columns
