"""Compare: two settings side by side (ecisem_core/ui/compare.py and views/compare.py)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest, app_test
from test_app import APP, _NavigationPagesManager, demo_cache  # noqa: F401 - the fixture

from ecisem_core.config import ScoreConfig
from ecisem_core.metric.presets import get_preset
from ecisem_core.ui import compare
from ecisem_core.ui.data import DEMO_PATH
from ecisem_core.ui.projections import WARM_UP_ENV


def test_compare_table_ranks_moves_and_agreement():
    a = pd.DataFrame({"source": ["x", "y", "z"], "rank": [1, 2, 3], "eci_sem": [0.3, 0.2, 0.1]})
    b = pd.DataFrame({"source": ["z", "x", "y"], "rank": [1, 2, 3], "eci_sem": [0.5, 0.4, 0.1]})
    t = compare.compare_table(a, b)
    assert t["source"].tolist() == ["x", "y", "z"] and t["rank B"].tolist() == [2, 3, 1]
    assert t["A → B"].tolist() == ["↓ 1", "↓ 1", "↑ 2"]
    assert compare.agreement(t) == pytest.approx(-1 / 3)  # 1 concordant pair of 3, 2 discordant
    assert compare.agreement(compare.compare_table(a, a)) == pytest.approx(1.0)


def test_a_presets_kappa_is_scaled_to_the_datas_dimension():
    sidebar = ScoreConfig(sample_size=500, seed=3)
    cfg = compare.config_of("weak-start", sidebar, 48)
    preset = get_preset("weak-start").config
    assert cfg.kappa == pytest.approx(preset.kappa / 384 * 48) and (cfg.sample_size, cfg.seed) == (500, 3)
    assert (cfg.tau, cfg.alpha, cfg.beta, cfg.gamma) == (preset.tau, preset.alpha, preset.beta, preset.gamma)
    assert compare.config_of(compare.SIDEBAR, sidebar, 48) is sidebar
    settings = compare.settings_table(sidebar, cfg, 48)
    assert settings.set_index("setting").loc["κ/d", "B"] == pytest.approx(preset.kappa / 384)
    assert settings.set_index("setting").loc["α", "differs"] == "yes"


def test_compare_page_shows_two_presets_from_the_link(demo_cache, monkeypatch):
    """A link naming two presets opens the page on them; the table is the library's two rankings of the demo."""
    if not DEMO_PATH.exists():
        pytest.skip("the demo dataset is not built")
    from ecisem_core.io.load import read_triplets
    from ecisem_core.score import prepare, score_prepared

    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)
    monkeypatch.setenv(WARM_UP_ENV, "0")
    at = AppTest.from_file(APP, default_timeout=600)
    at.query_params.update({"view": "compare", "ca": "paper", "cb": "adapt"})
    at.run()
    at.switch_page("views/compare.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="compare_a").value == "paper" and at.selectbox(key="compare_b").value == "adapt"
    table = at.dataframe[0].value
    prep = prepare(read_triplets(DEMO_PATH).triplets)
    want, full = {}, {}
    for side, name in (("A", "paper"), ("B", "adapt")):
        cfg = compare.config_of(name, ScoreConfig(), prep.dim)
        full[side] = score_prepared(prep, cfg, uncertainty=False, contributions=True).sources
        want[side] = full[side].set_index("source")["rank"]
    got = table.set_index("source")
    assert got["rank A"].to_dict() == want["A"].to_dict() and got["rank B"].to_dict() == want["B"].to_dict()
    terms = at.dataframe[1].value  # which terms moved each score: the library's contributions under A and B
    want_terms = compare.term_changes(full["A"], full["B"]).iloc[:, :-1]  # same φ on both sides: no v(∅) column
    pd.testing.assert_frame_equal(terms, want_terms, check_exact=False, rtol=1e-9)
    tau = float(at.metric[0].value)
    assert np.isfinite(tau) and -1 <= tau <= 1
    link = parse_qs(urlsplit(at.code[0].value).query)
    assert link["ca"] == ["paper"] and link["cb"] == ["adapt"]


def test_term_changes_split_each_move_among_the_terms():
    """Hand-checked: x's log ECI_sem goes from log 0.3 to log 0.5; its φ change by (+0.2, −0.1, 0, +0.41); the
    rows keep A's rank order."""
    a = pd.DataFrame({"source": ["y", "x"], "rank": [2, 1], "eci_sem": [0.2, 0.3],
                      "phi_c": [0.1, -0.5], "phi_h": [-1.0, -0.4], "phi_rho": [0.0, -0.3], "phi_div": [-0.7, -0.004]})
    b = pd.DataFrame({"source": ["x", "y"], "rank": [1, 2], "eci_sem": [0.5, 0.1],
                      "phi_c": [-0.3, 0.1], "phi_h": [-0.5, -1.2], "phi_rho": [-0.3, 0.0], "phi_div": [0.406, -1.2]})
    t = compare.term_changes(a, b)
    assert t["source"].tolist() == ["x", "y"]
    x = t.iloc[0]
    assert x["Δ log ECI_sem"] == pytest.approx(np.log(0.5 / 0.3)) and list(t.columns)[:2] == ["source", "Δ log ECI_sem"]
    assert [x[f"Δ {n}"] for n in ("φ_c consistency", "φ_h locality", "φ_ρ residuality", "φ_div diversity")] == \
        pytest.approx([0.2, -0.1, 0.0, 0.41])
    # ΣΔφ = 0.51, so the base takes the rest: Δ v(∅) = log(0.5/0.3) − 0.51 = 0.0008
    assert x["Δ v(∅) FN discount, zero residuals"] == pytest.approx(np.log(0.5 / 0.3) - 0.51)
    assert t.iloc[:, 2:].sum(axis=1).to_numpy() == pytest.approx(t["Δ log ECI_sem"].to_numpy())


def test_term_changes_add_up_to_the_change_of_log_eci_sem_on_the_demo(demo_cache):
    """Shapley efficiency on real scores: the four Δφ sum to Δ log ECI_sem for every source when φ is the same on
    both sides; with the FN penalty φ on one side only, the base v(∅) column takes the rest, and the five sum."""
    from ecisem_core.embed.encoders import default_encoder
    from ecisem_core.io.load import read_triplets
    from ecisem_core.score import prepare, score_prepared

    table = read_triplets([DEMO_PATH]).triplets
    prep = prepare(table, default_encoder(), ScoreConfig(sample_size=300), cache_dir=demo_cache)
    res = {side: score_prepared(prep, compare.config_of(side, ScoreConfig(sample_size=300), prep.dim),
                                uncertainty=False, contributions=True).sources for side in ("paper", "weak-start")}
    t = compare.term_changes(res["paper"], res["weak-start"])
    deltas = t[[c for c in t.columns if c.startswith("Δ φ")]].sum(axis=1)
    assert np.allclose(deltas, t["Δ log ECI_sem"], atol=1e-9) and t["Δ log ECI_sem"].abs().max() > 0.01
    assert np.allclose(t["Δ v(∅) FN discount, zero residuals"], 0, atol=1e-9)
    penalised = score_prepared(prep, ScoreConfig(sample_size=300, fn_penalty=1.0), uncertainty=False,
                               contributions=True).sources
    t = compare.term_changes(score_prepared(prep, ScoreConfig(sample_size=300), uncertainty=False,
                                            contributions=True).sources, penalised)
    base = t["Δ v(∅) FN discount, zero residuals"]
    assert (base < -1e-3).any()  # sources with flagged triplets lose weight before any term is switched on
    assert np.allclose(t.iloc[:, 2:].sum(axis=1), t["Δ log ECI_sem"], atol=1e-9)
