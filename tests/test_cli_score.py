"""`ecisem score` end to end: the real default encoder on real MS MARCO triplets from ../shared, and exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from ecisem_core.score import SOURCE_COLUMNS, TRIPLET_COLUMNS

N_QUERIES = 400


def run_cli(*args, cwd=None, env_extra=None):
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "ecisem_core.cli", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=900)


@pytest.fixture(scope="module")
def real_sources(external, tmp_path_factory):
    """bm25 (the project's BM25 negatives), llm_generated (its generated passages 2 and 3) and random (BM25
    negatives shuffled across queries), for the same 400 queries: written to a temp folder, never the repo."""
    d = external / "llm-enhanced-dpr"
    out = tmp_path_factory.mktemp("real")
    bm25 = pd.read_csv(d / "bm25_train.csv").head(N_QUERIES)
    llm = pd.read_json(d / "llm_generated_negatives.jsonl", lines=True)
    llm = llm[llm.query_text.isin(bm25.query_text) & llm.negative_num.isin([2, 3])]
    rnd = bm25.copy()
    rnd["hard_negative"] = np.random.default_rng(0).permutation(rnd["hard_negative"].to_numpy())
    bm25.to_csv(out / "bm25.csv", index=False)
    llm.to_json(out / "llm_generated.jsonl", orient="records", lines=True)
    rnd.to_csv(out / "random.csv", index=False)
    return out


@pytest.mark.slow
def test_score_real_data_with_default_encoder(real_sources, tmp_path):
    files = [real_sources / f for f in ("bm25.csv", "llm_generated.jsonl", "random.csv")]
    proc = run_cli("score", *files, "--out", tmp_path / "out", "--bootstrap", 100)
    assert proc.returncode == 0, proc.stderr
    src = pd.read_csv(tmp_path / "out" / "sources.csv")
    trip = pd.read_parquet(tmp_path / "out" / "triplets.parquet")
    assert list(src.columns[: len(SOURCE_COLUMNS)]) == SOURCE_COLUMNS
    assert list(trip.columns[: len(TRIPLET_COLUMNS)]) == TRIPLET_COLUMNS
    assert len(trip) >= 1000
    assert set(src.source) == {"bm25", "llm_generated", "random"}
    assert src.n.sum() == len(trip)
    assert ((src.eci_sem > 0) & (src.eci_sem <= src["info"])).all()
    assert ((src.ci_low <= src.eci_sem) & (src.eci_sem <= src.ci_high)).all()
    assert src.diversity.between(0, 1).all() and src.fn_rate.between(0, 1).all()
    assert np.allclose(src[["phi_c", "phi_h", "phi_rho", "phi_div"]].sum(axis=1), np.log(src.eci_sem))
    for col in ("s_qp", "s_qn", "s_pn"):
        assert trip[col].between(-1.0001, 1.0001).all()
    for col in ("c", "h", "rho", "w", "fn_score"):
        assert trip[col].between(0, 1).all(), col
    # generated negatives are harder than BM25 over a tiny pool, which beat shuffled ones
    assert list(src.source) == ["llm_generated", "bm25", "random"]
    settings = json.loads((tmp_path / "out" / "settings.json").read_text())
    assert settings["dim"] == 384 and settings["kappa"] == 768
    assert "sources.csv" in proc.stderr  # tells where it wrote
    print(src[["source", "n", "eci_sem", "ci_low", "ci_high", "diversity", "eci_v1", "fn_rate"]].to_string())


def test_bad_input_exits_2_naming_file_and_line(tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"query": "a", "positive": "b", "negative": "c"}\n{"query": "a", oops}\n', encoding="utf-8")
    proc = run_cli("score", bad, "--out", tmp_path / "o", "--encoder", "tfidf")
    assert proc.returncode == 2
    assert "broken.jsonl" in proc.stderr and "line 2" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_column_and_bad_setting_exit_2(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("query,positive\na,b\n", encoding="utf-8")
    proc = run_cli("score", f, "--encoder", "tfidf", "--out", tmp_path / "o")
    assert proc.returncode == 2 and "x.csv" in proc.stderr and "negative" in proc.stderr
    good = tmp_path / "g.csv"
    good.write_text("query,positive,negative\na b,b c,c d\n", encoding="utf-8")
    proc = run_cli("score", good, "--encoder", "tfidf", "--tau", "-1", "--out", tmp_path / "o")
    assert proc.returncode == 2 and "tau" in proc.stderr


def test_help_documents_every_option_with_default():
    proc = run_cli("score", "--help")
    assert proc.returncode == 0
    for flag in ("--encoder", "--tau", "--alpha", "--beta", "--gamma", "--kappa", "--sample-size", "--seed",
                 "--out", "--config", "--bootstrap", "--tokenizer", "--idf-corpus", "--hybrid"):
        assert flag in proc.stdout, flag
    assert "default 0.05" in proc.stdout and "2d" in proc.stdout


def test_config_file_and_hybrid(tmp_path):
    from helpers import synthetic_triplets

    data = tmp_path / "syn.csv"
    synthetic_triplets(20).to_csv(data, index=False)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"config": {"alpha": 0.5, "bootstrap": 20}}), encoding="utf-8")
    proc = run_cli("score", data, "--encoder", "tfidf", "--config", cfg, "--hybrid", "close+far", "--out",
                   tmp_path / "o", "--quiet")
    assert proc.returncode == 0, proc.stderr
    src = pd.read_csv(tmp_path / "o" / "sources.csv")
    assert "close+far" in set(src.source)
    used = json.loads((tmp_path / "o" / "settings.json").read_text())["config"]
    assert used["alpha"] == 0.5 and used["bootstrap"] == 20
