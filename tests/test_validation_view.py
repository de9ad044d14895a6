"""The Validate page's logic (ecisem_core/ui/validation_view.py): reading a results folder of `ecisem validate`
(built here with the module's own writers, no training), readable errors for missing or bad files, display tables,
the calibrated settings → sidebar values, the data-root check, and the background runner (a trivial command)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ecisem_core.downstream import agreement
from ecisem_core.downstream import runs
from ecisem_core.downstream import validate as v
from ecisem_core.report.validation import write_outputs
from ecisem_core.downstream.calibrate import CalibrationResult, settings_of
from ecisem_core.config import ScoreConfig
from ecisem_core.errors import InputError
from ecisem_core.ui import validation_view as vv
from ecisem_core.ui.state import widget_key

SOURCES = {"bm25": 0.41, "dense": 0.44, "llm": 0.38, "hybrid": 0.46}
"""Mean nDCG@10 of each fake source (the base gets 0.35)."""
ECI = {"bm25": 2.0, "dense": 3.0, "llm": 1.0, "hybrid": 2.5}
CALIBRATED = ScoreConfig(tau=0.1, alpha=2.0, beta=0.5, gamma=0.0, kappa=8.0 * 384)


def make_results(folder: Path, *, calibrated: bool = True, seeds: tuple[int, ...] = (0, 1)) -> Path:
    """A results folder as `ecisem validate --out` writes it, from made-up runs (real summarise/agreement/write
    functions of ecisem_core.downstream.validate and calibrate; nothing trained)."""
    done = []
    for seed in seeds:
        done.append(runs.RunResult(runs.BASE_SOURCE, 0, {"ndcg10": 0.35, "mrr10": 0.30, "recall100": 0.80}, 0, 50, 1.0,
                                "k"))
        for s, nd in SOURCES.items():
            jitter = 0.01 * (seed - 0.5)
            done.append(runs.RunResult(s, seed, {"ndcg10": nd + jitter, "mrr10": nd - 0.05 + jitter,
                                              "recall100": 0.85 + jitter}, 64, 60, 1.0, "k"))
    done = [r for i, r in enumerate(done) if not (r.source == runs.BASE_SOURCE and i > 0)]
    table = runs.summarise_runs(done)
    scores = {"eci_sem": pd.Series(ECI), "eci_v1": pd.Series({"bm25": 1.0, "dense": 2.0, "llm": 3.0, "hybrid": 4.0}),
              "c": pd.Series({"bm25": .9, "dense": .8, "llm": .95, "hybrid": .85}),
              "h": pd.Series(ECI) / 10, "rho": pd.Series({"bm25": .5, "dense": .6, "llm": .7, "hybrid": .4}),
              "w": pd.Series(ECI) / 20}
    scores = {k: s.rename(k) for k, s in scores.items()}
    agreed = agreement.agreement_table(runs.downstream_series(table), scores, n_boot=50)
    cal = None
    if calibrated:
        cal = CalibrationResult(config=CALIBRATED, n_sources=4, n_seeds=len(seeds), grid_size=576,
                                loo_kendall=0.667, loo_spearman=0.8, in_sample_kendall=1.0, in_sample_spearman=1.0,
                                default_kendall=0.333, default_spearman=0.4, settings=settings_of(CALIBRATED, 384))
    result = v.ValidationResult(table=table, agreement=agreed, scores=scores, runs=done, selection=None,
                                leaks=None, calibration=cal)
    result.summary = {"sources": list(SOURCES), "n_sources": 4, "seeds": list(seeds), "n_seeds": len(seeds),
                      "base_model": "all-MiniLM-L6-v2@gt-0.1", "budget": {"per_source": 64, "per_source_used": 64,
                                                                          "epochs": 1, "batch_size": 32},
                      "eval": {"name": "fake", "n_queries": 50, "n_passages": 500}, "seconds": {"total": 312.0}}
    if not calibrated:
        result.summary["calibration"] = {"calibrated": False, "reason": "leave-one-source-out needs at least 3 "
                                         "sources (got 2)"}
    write_outputs(result, folder)
    return folder


@pytest.fixture
def results_dir(tmp_path) -> Path:
    return make_results(tmp_path / "val")


def test_reads_a_results_folder(results_dir):
    res = vv.read_results(results_dir)
    assert res.n_sources == 4 and res.n_seeds == 2
    assert res.notes == []
    assert set(res.scores.columns) == set(agreement.SCORE_NAMES)
    cal = res.calibration
    assert cal.config == ScoreConfig.load(results_dir / "calibrated_config.json")
    assert cal.settings == {"tau": 0.1, "alpha": 2.0, "beta": 0.5, "gamma": 0.0, "kappa": 3072.0}
    assert (cal.n_sources, cal.n_seeds) == (4, 2)
    assert cal.loo_kendall == pytest.approx(0.667) and cal.in_sample_kendall == 1.0


def test_display_tables(results_dir):
    res = vv.read_results(results_dir)
    down = vv.downstream_table(res.table)
    assert down["source"].tolist()[0] == "untrained base"
    assert down["source"].tolist()[1:] == ["hybrid", "dense", "bm25", "llm"]   # by mean nDCG@10
    assert down["rank"].tolist() == ["", "1", "2", "3", "4"]
    hybrid = down[down["source"] == "hybrid"].iloc[0]
    assert hybrid["nDCG@10"] == "0.4600 ± 0.0071"   # mean of 0.455/0.465, sd over the two seeds
    assert hybrid["Δ nDCG@10 vs base"] == "+0.1100"
    agr = vv.agreement_table(res.agreement)
    assert agr["score"].tolist()[:2] == ["ECI_sem", "classic ECI"]
    row = agr.iloc[0]
    # ECI_sem orders dense > hybrid > bm25 > llm, downstream hybrid > dense > bm25 > llm: one swapped pair of 6
    assert row["Kendall τ"] == "+0.667" and row["sources"] == 4
    assert row["τ 95% CI"].startswith("[") and row["Spearman ρ"] == "+0.800"
    fig = vv.figure(res)
    assert {t.name for t in fig.data} >= {"Kendall τ", "Spearman ρ", "sources"}
    assert "ECI_sem" in list(fig.data[0].x)


def test_one_seed_shows_no_sd(tmp_path):
    res = vv.read_results(make_results(tmp_path / "one", seeds=(0,)))
    assert vv.downstream_table(res.table).loc[1, "nDCG@10"] == "0.4550"


@pytest.mark.parametrize("name", ["validation.csv", "agreement.csv"])
def test_missing_required_file_is_named(results_dir, name):
    (results_dir / name).unlink()
    with pytest.raises(vv.ResultsError, match=f"{name} is missing"):
        vv.read_results(results_dir)


def test_bad_files_give_readable_messages(results_dir):
    (results_dir / "agreement.csv").write_text("score,kendall_tau\neci_sem,0.5\n")
    with pytest.raises(vv.ResultsError, match="agreement.csv lacks the column"):
        vv.read_results(results_dir)
    (results_dir / "validation.csv").write_bytes(b"")
    with pytest.raises(vv.ResultsError, match="validation.csv cannot be read"):
        vv.read_results(results_dir)
    with pytest.raises(vv.ResultsError, match="not a folder"):
        vv.read_results(results_dir / "nowhere")


def test_optional_files_missing_or_bad_become_notes(results_dir):
    (results_dir / "scores.csv").unlink()
    (results_dir / "summary.json").write_text("{oops")
    (results_dir / "calibrated_config.json").write_text(json.dumps({"config": {"tau": 0.1, "alfa": 1}}))
    res = vv.read_results(results_dir)
    assert any("scores.csv is missing" in n for n in res.notes)
    assert any("summary.json cannot be read" in n for n in res.notes)
    assert res.calibration is None and "unknown setting" in res.calibration_note
    assert {t.name for t in vv.figure(res).data} == {"Kendall τ", "Spearman ρ"}


def test_equal_downstream_values_are_flagged(results_dir):
    table = pd.read_csv(results_dir / "validation.csv")
    table["ndcg10_mean"] = 1.0
    table.to_csv(results_dir / "validation.csv", index=False)
    assert any("downstream ranking is undefined" in n for n in vv.read_results(results_dir).notes)


def test_no_calibration_says_why(tmp_path):
    res = vv.read_results(make_results(tmp_path / "nocal", calibrated=False))
    assert res.calibration is None
    assert "needs at least 3 sources" in res.calibration_note


def test_sidebar_values_from_calibration(results_dir):
    res = vv.read_results(results_dir)
    dim = vv.embedding_dim(res.summary)
    assert dim == 384
    values, notes = vv.sidebar_values(res.calibration, dim)
    assert values == {widget_key("tau"): 0.1, widget_key("alpha"): 2.0, widget_key("beta"): 0.5,
                      widget_key("gamma"): 0.0, widget_key("kappa"): 8.0} and notes == []
    state: dict = {widget_key("tau"): 0.05}
    vv.apply_settings(state, values)
    assert state[widget_key("tau")] == 0.1 and state[widget_key("kappa")] == 8.0
    # unknown d: κ left alone, said so; out-of-range τ clamped, said so
    cal = res.calibration
    cal.settings = {**cal.settings, "tau": 0.9}
    values, notes = vv.sidebar_values(cal, None)
    assert widget_key("kappa") not in values and values[widget_key("tau")] == 0.5
    assert any("κ left unchanged" in n for n in notes) and any("outside" in n for n in notes)


def test_paths_refused_outside_the_data_root(tmp_path, results_dir):
    root = tmp_path / "root"
    make_results(root / "runs" / "a")
    assert vv.results_folder("runs/a", root) == (root / "runs" / "a").resolve()
    with pytest.raises(InputError, match="outside the data root"):
        vv.results_folder(str(results_dir), root)
    with pytest.raises(InputError, match="outside the data root"):
        vv.results_folder("../val", root)
    with pytest.raises(InputError, match="outside the data root"):
        vv.eval_argument("/etc", root)
    assert vv.eval_argument("split:0.2", root) == "split:0.2"
    (root / "runs" / "a" / "cache" / "x").mkdir(parents=True)
    (root / "runs" / "a" / "cache" / "x" / "validation.csv").write_text("nope")
    assert vv.find_result_folders(root) == [(root / "runs" / "a").resolve()]


def test_command_and_seeds(tmp_path):
    assert vv.parse_seeds("0, 1 1 2") == [0, 1, 2]
    with pytest.raises(InputError):
        vv.parse_seeds("a")
    demo = tmp_path / "demo.jsonl"
    assert vv.dataset_files("demo", demo) == [demo]
    assert vv.dataset_files("upload:abc", demo) is None
    cmd = vv.build_command([demo], "split:0.2", tmp_path / "out", per_source=32, epochs=1, seeds=[0, 1],
                           python="py")
    assert cmd == ["py", "-m", "ecisem_core.cli", "validate", str(demo), "--eval", "split:0.2", "--out",
                   str(tmp_path / "out"), "--per-source", "32", "--epochs", "1", "--seeds", "0", "1",
                   "--eval-queries", "200", "--eval-passages", "2000"]
    first = vv.new_run_folder(tmp_path, now=0)
    assert first.parent == (tmp_path / vv.RUNS_DIR).resolve() and vv.new_run_folder(tmp_path, now=0) != first


def _wait(run: vv.Run, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while run.status() == "running" and time.monotonic() < deadline:
        time.sleep(0.05)


def test_runner_logs_finishes_and_stops(tmp_path):
    code = ("import sys, time\n"
            "for i in range(3):\n"
            "    sys.stderr.write(f'\\rtraining {i}/3'); sys.stderr.flush()\n"
            "print('\\ndone')\n")
    run = vv.start_run([sys.executable, "-c", code], tmp_path / "ok")
    assert vv.get_run(tmp_path / "ok") is run
    _wait(run)
    assert run.proc.returncode == 0
    assert run.status() == "failed"   # exited 0 but wrote no validation.csv
    assert vv.tail(run.log).splitlines() == ["training 2/3", "done"]   # progress redraws collapsed
    assert json.loads((tmp_path / "ok" / vv.RUN_FILE).read_text())["pid"] == run.pid

    slow = vv.start_run([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"],
                        tmp_path / "slow")
    assert slow.status() == "running"
    t0 = time.monotonic()
    vv.stop_run(slow)
    assert slow.status() == "stopped" and time.monotonic() - t0 < 6
