"""Named presets: paper is the published construction, shipped presets load and round-trip, the CLI and the
dashboard select them and say which one produced a ranking."""
from __future__ import annotations

import json

import pytest

from ecisem_core.cli import main
from ecisem_core.config import ScoreConfig
from ecisem_core.errors import InputError
from ecisem_core.metric import presets as P

DEMO = "assets/demo/demo_triplets.jsonl"


def test_paper_is_the_published_construction():
    assert P.get_preset("paper").config == ScoreConfig()
    assert P.preset_of(ScoreConfig()) == "paper"
    assert P.preset_of(ScoreConfig(fn_penalty=1.5)) is None
    assert list(P.presets())[0] == "paper"


def test_every_shipped_preset_loads_and_round_trips(tmp_path):
    for name, preset in P.presets().items():
        if name == "paper":
            continue
        assert preset.fitted_on and preset.agreement, name          # documented: data and measured agreement
        path = P.write_preset(preset, tmp_path)
        assert P.read_preset(path) == preset


def test_bad_preset_files_and_names(tmp_path):
    with pytest.raises(InputError, match="unknown preset 'nope'; known: paper"):
        P.get_preset("nope")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        P.read_preset(bad)
    bad.write_text(json.dumps({"name": "x", "config": {"tau": -1}}))
    with pytest.raises(InputError, match="tau must be > 0"):
        P.read_preset(bad)


def test_cli_preset_is_recorded_and_exclusive_with_config(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["score", DEMO, "--preset", "paper", "--out", str(out), "--quiet", "--bootstrap", "20"]) == 0
    assert json.loads((out / "settings.json").read_text())["preset"] == "custom"   # --bootstrap 20 changed it
    assert main(["score", DEMO, "--preset", "paper", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "settings.json").read_text())["preset"] == "paper"
    cfg = tmp_path / "c.json"
    ScoreConfig().save(cfg)
    assert main(["score", DEMO, "--preset", "paper", "--config", str(cfg), "--out", str(out)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["score", DEMO, "--preset", "nope", "--out", str(out)]) == 2
