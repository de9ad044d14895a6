"""The settings registry (``ecisem_core.config.SETTINGS``): every consumer reads it when called, so one entry added
there reaches the CLI, the share link, the dashboard's state and the calibration grid with no other edit; the
registry itself is consistent; ScoreConfig validates from it."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from ecisem_core import config
from ecisem_core.cli import build_parser
from ecisem_core.commands.options import config_from_args
from ecisem_core.config import ScoreConfig, Setting, config_class
from ecisem_core.downstream.calibrate import CalibrationGrid, distance_to, grid_settings, settings_of
from ecisem_core.errors import InputError
from ecisem_core.ui.share import PARAMS, decode, encode, merge_params, param_names
from ecisem_core.ui.state import (MetricState, ViewState, ui_default, ui_settings, view_from_state, view_to_state,
                                  widget_key)

DUMMY = Setting("zeta", float, 0.25, "a dummy setting ζ (default {default})", symbol="ζ", flag="--zeta", url="z",
                label="ζ  dummy", widget_help="Only in this test.", minimum=0, ui_range=(0.0, 1.0), step=0.05,
                grid=(0.0, 0.5))
EXPONENTS = (-1.0, 0.0, 1.0, 2.0)


@pytest.fixture
def dummy(monkeypatch) -> Setting:
    """The registry with :data:`DUMMY` appended (for this test only)."""
    monkeypatch.setattr(config, "SETTINGS", (*config.SETTINGS, DUMMY))
    return DUMMY


def test_dummy_setting_reaches_the_command_line(dummy, capsys):
    parser = build_parser()
    args = parser.parse_args(["score", "x.csv", "--zeta", "0.75", "--tau", "0.1"])
    assert args.zeta == 0.75
    cfg = config_from_args(args)
    assert (cfg.zeta, cfg.tau, cfg.alpha) == (0.75, 0.1, config.ALPHA)
    assert config_from_args(parser.parse_args(["score", "x.csv"])).zeta == 0.25  # the registry default
    with pytest.raises(InputError, match=r"zeta must be >= 0 \(got -1.0\)"):
        config_from_args(parser.parse_args(["score", "x.csv", "--zeta", "-1"]))
    with pytest.raises(SystemExit):
        parser.parse_args(["score", "--help"])
    assert "--zeta ZETA" in capsys.readouterr().out.replace("\n", " ")


def test_dummy_setting_reaches_the_share_link_and_the_dashboard_state(dummy):
    view = ViewState(metric=MetricState(zeta=0.75, tau=0.1), sources=("bm25",))
    params = encode(view)
    assert params == {"tau": "0.1", "z": "0.75", "src": ["bm25"]}
    assert decode(params) == (view, [])
    assert "z" not in encode(ViewState()) and encode(ViewState(), full=True)["z"] == "0.25"
    clamped, notes = decode({"z": "3"})
    assert clamped.metric["zeta"] == 1.0 and len(notes) == 1 and "outside [0, 1]" in notes[0]
    assert "z" in param_names() and merge_params({"z": "0.1", "x": "1"}, {}) == {"x": "1"}
    assert view.config_for(384).zeta == 0.75
    state: dict = {}
    view_to_state(view, state)
    assert state[widget_key("zeta")] == 0.75 and view_from_state(state) == view
    assert dummy in ui_settings() and ui_default(dummy) == 0.25


def _sidebar_weights() -> None:  # an AppTest script: the sidebar's metric widgets and its reset button
    import streamlit as st

    from ecisem_core.ui import sidebar

    sidebar._weights_section()
    st.button("Reset weights", on_click=sidebar.reset_weights)


def test_dummy_setting_gets_a_sidebar_widget_and_a_reset(dummy):
    at = AppTest.from_function(_sidebar_weights).run()
    assert not at.exception, [e.value for e in at.exception]
    zeta = at.slider(key=widget_key("zeta"))
    assert zeta.label == "ζ  dummy" and (zeta.min, zeta.max, zeta.step) == (0.0, 1.0, 0.05)
    zeta.set_value(0.75).run()
    at.slider(key=widget_key("tau")).set_value(0.2).run()
    at.button[0].click().run()
    assert at.slider(key=widget_key("zeta")).value == 0.25 and at.slider(key=widget_key("tau")).value == 0.05
    assert [n.label for n in at.number_input] == ["N per source", "Seed"]


def test_dummy_setting_reaches_the_calibration_grid(dummy):
    grid = CalibrationGrid()
    assert [name for name, _ in grid.axes] == ["tau", "alpha", "beta", "gamma", "kappa", "zeta"]
    assert grid.axes[-1] == ("zeta", (0.0, 0.5)) and grid.size == 3 * 4 * 4 * 4 * 3 * 2
    configs = grid.configs(config_class()(), dim=1)
    assert len(configs) == grid.size and [c.zeta for c in configs[:4]] == [0.0, 0.5, 0.0, 0.5]
    assert settings_of(configs[1], 1) == {"tau": 0.02, "alpha": -1.0, "beta": -1.0, "gamma": -1.0, "kappa": 0.5,
                                          "zeta": 0.5}
    assert distance_to(settings_of(configs[0], 1), settings_of(configs[1], 1)) == 0.5


def test_without_the_dummy_nothing_changed():
    assert config_class() is ScoreConfig and not hasattr(ScoreConfig(), "zeta")
    assert [s.name for s in grid_settings()] == ["tau", "alpha", "beta", "gamma", "kappa"]
    assert "--zeta" not in build_parser().format_help()


def test_calibration_grid_reaches_both_signs():
    """τ slowest, κ = factor · d fastest; the exponents may be negative (a term counted against a source: the
    validity study's adapt regime asked for it), so the grid holds −1 as well as 0, 1 and 2."""
    got = [(c.tau, c.alpha, c.beta, c.gamma, c.kappa) for c in CalibrationGrid().configs(ScoreConfig(), 384)]
    assert got == list(itertools.product((0.02, 0.05, 0.1), EXPONENTS, EXPONENTS, EXPONENTS, (192.0, 768.0, 3072.0)))
    assert CalibrationGrid().size == len(got) == 576


def test_registry_is_consistent():
    settings = config.SETTINGS
    names = [s.name for s in settings]
    assert names == [f.name for f in ScoreConfig.__dataclass_fields__.values()][:-1]  # then "notes"
    assert list(ScoreConfig().to_dict()) == [*names, "notes"]
    flags = [s.flag for s in settings if s.flag]
    urls = [s.url for s in settings if s.url]
    assert len(set(names)) == len(names) and len(set(flags)) == len(flags)
    assert len(set(urls)) == len(urls) and not set(urls) & set(PARAMS.values())
    assert urls == ["tau", "a", "b", "g", "fn", "k", "n", "seed"]
    keys = [widget_key(s) for s in ui_settings()]
    assert keys == ["tau", "alpha", "beta", "gamma", "fn_penalty", "kappa_d", "sample_size", "seed"]
    for s in settings:
        assert s.check(s.default) is None, s.name
        if s.ui_range is not None:
            lo, hi = s.ui_range
            assert lo <= ui_default(s) <= hi and s.check(s.type(lo)) is None, s.name
        if s.per_dim:
            assert s.per_dim_default in s.options and all(o > 0 for o in s.options + s.grid)
        elif s.grid is not None:
            assert all(s.check(v) is None for v in s.grid), s.name


@pytest.mark.parametrize("changes,message", [
    ({"tau": 0}, "tau must be > 0 (got 0)"),
    ({"tau": float("nan")}, "tau must be > 0 (got nan)"),
    ({"alpha": -5.0}, "alpha must be >= -4 (got -5.0)"),
    ({"gamma": float("inf")}, None),
    ({"kappa": 0.0}, "kappa must be > 0 (got 0.0)"),
    ({"sample_size": 0}, "sample_size must be >= 1 (got 0)"),
    ({"sample_size": 2.5}, "sample_size must be a whole number (got 2.5)"),
    ({"sample_size": True}, "sample_size must be a whole number (got True)"),
    ({"bootstrap": -1}, "bootstrap must be >= 0 (got -1)"),
    ({"seed": -3}, "seed must be >= 0 (got -3)"),
    ({"stability_trials": -1}, "stability_trials must be >= 0 (got -1)"),
    ({"tokenizer": "bpe"}, "tokenizer must be 'word' or 'encoder' (got 'bpe')"),
    ({"beta": "1"}, "beta must be a number (got '1')"),
    ({"alpha": False}, "alpha must be a number (got False)"),
])
def test_validation_messages(changes, message):
    if message is None:  # gamma = inf: not finite
        with pytest.raises(InputError, match="gamma must be >= -4"):
            ScoreConfig(**changes)
        return
    with pytest.raises(InputError) as err:
        ScoreConfig(**changes)
    assert err.value.problem == message


def test_problems_are_reported_together_and_good_values_pass():
    with pytest.raises(InputError) as err:
        ScoreConfig(tau=-1, seed=-1, tokenizer="x")
    assert err.value.problem == ("tau must be > 0 (got -1); seed must be >= 0 (got -1); "
                                 "tokenizer must be 'word' or 'encoder' (got 'x')")
    cfg = ScoreConfig(alpha=1, sample_size=np.int64(10), kappa=None, idf_corpus=None, stability_trials=0, seed=0)
    assert cfg.alpha == 1 and cfg.sample_size == 10 and cfg.kappa_for(384) == 768.0
    assert ScoreConfig.from_dict(cfg.to_dict()) == cfg and cfg.replace(tau=0.1).tau == 0.1
    with pytest.raises(InputError, match="unknown setting"):
        ScoreConfig.from_dict({"taus": 0.1})
