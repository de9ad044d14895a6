"""Downstream validation: metrics (hand-checked), budget selection, batching, cache/resume, leak guard, agreement,
and the whole `ecisem validate` command end to end on a tiny budget with the real default model (slow)."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecisem_core.downstream import agreement
from ecisem_core.downstream import retrieval
from ecisem_core.downstream import runs
from ecisem_core.downstream import training
import ecisem_core.downstream.validate as v
from ecisem_core.config import ScoreConfig
from ecisem_core.io.evaldata import EvalData, normalise_query

SHARED = Path(__file__).parents[1].parent / "shared" / "data" / "external" / "llm-enhanced-dpr"

# ------------------------------------------------------------------------------------------------------- metrics

# Two queries, five passages. Query A ranks d0 > d1 > d2 > d3 > d4 and d1 (grade 1), d3 (grade 2) are relevant:
#   DCG@10  = 1/log2(3) + 2/log2(5) = 0.630930 + 0.861353 = 1.492283
#   IDCG@10 = 2/log2(2) + 1/log2(3) = 2.630930          → nDCG@10 = 0.567207
#   MRR@10 = 1/2 (first relevant at rank 2); Recall@100 = 2/2; Recall@2 = 1/2 (only d1 in the top 2)
# Query B ranks d4 first and only d4 is relevant: nDCG = MRR = Recall = 1.
SCORES = np.array([[0.9, 0.8, 0.7, 0.6, 0.5], [0.1, 0.2, 0.3, 0.4, 0.5]])
GAINS = np.array([[0, 1, 0, 2, 0], [0, 0, 0, 0, 1]], dtype=float)


def test_metrics_hand_checked() -> None:
    m = retrieval.retrieval_metrics(SCORES, GAINS)
    assert m["ndcg10"] == pytest.approx((0.567207 + 1) / 2, abs=1e-6)
    assert m["mrr10"] == pytest.approx(0.75)
    assert m["recall100"] == pytest.approx(1.0)
    ranked = retrieval.top_k(SCORES, 5)
    assert ranked.tolist() == [[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]]
    rel = np.take_along_axis(GAINS, ranked, axis=1) > 0
    assert retrieval.recall_at_k(rel, np.array([2, 1]), 2).tolist() == [0.5, 1.0]
    assert retrieval.mrr_at_k(rel, 1).tolist() == [0.0, 1.0]  # query A's first hit is at rank 2 > k
    ndcg = retrieval.ndcg_at_k(np.take_along_axis(GAINS, ranked, axis=1), GAINS, 10)
    assert ndcg[0] == pytest.approx(0.5672074, abs=1e-7)


def test_metrics_ties_and_empty_queries() -> None:
    scores = np.array([[0.5, 0.5, 0.5]])
    assert retrieval.top_k(scores, 2).tolist() == [[0, 1]]  # ties: lower index first
    m = retrieval.retrieval_metrics(scores, np.array([[0.0, 0.0, 1.0]]))
    assert m["mrr10"] == pytest.approx(1 / 3)
    assert m["ndcg10"] == pytest.approx(1 / math.log2(4))
    assert retrieval.ndcg_at_k(np.zeros((1, 3)), np.zeros((1, 3)), 3).tolist() == [0.0]


def test_gain_matrix() -> None:
    data = EvalData(queries={"b": "qb", "a": "qa"}, corpus={"y": "Y", "x": "X"}, qrels={"a": {"y": 2}, "b": {"x": 1}})
    qids, dids, gains = retrieval.gain_matrix(data)
    assert qids == ["a", "b"] and dids == ["x", "y"]
    assert gains.tolist() == [[0, 2], [1, 0]]


def test_linear_schedule() -> None:
    factors = [training.linear_schedule(s, total=10, warmup=2) for s in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0]
    assert factors[-1] == pytest.approx(1 / 8)
    assert all(a >= b for a, b in zip(factors[1:], factors[2:]))


# -------------------------------------------------------------------------------------------- selection, batches


def _table(spec: dict[str, list[tuple[int, int]]]) -> pd.DataFrame:
    """spec: source → [(query number, triplets for it)]."""
    rows = []
    for src, queries in spec.items():
        for q, k in queries:
            for j in range(k):
                rows.append({"query_id": f"q{q}", "query": f"Query {q}?", "positive": f"pos {q}",
                             "negative": f"{src} neg {q}.{j}", "source": src})
    return pd.DataFrame(rows)


def test_selection_same_size_shared_queries_first() -> None:
    t = _table({"a": [(q, 1) for q in range(10)],
                "b": [(q, 2) for q in range(6)] + [(q, 1) for q in range(11, 15)],
                "c": [(q, 1) for q in range(8)] + [(q, 1) for q in range(20, 31)]})
    sel = runs.select_triplets(t, per_source=6, seed=0)
    assert sel.per_source == 6 and sel.shared_queries == 6
    for src, part in sel.triplets.groupby("source"):
        assert sorted(part["query_id"]) == sorted(f"q{q}" for q in range(6)), src  # exactly the shared queries
    big = runs.select_triplets(t, per_source=100, seed=0)
    assert big.per_source == 10 and big.requested == 100  # capped by the smallest source (a: 10)
    assert big.triplets.groupby("source").size().tolist() == [10, 10, 10]
    b = big.triplets[big.triplets["source"] == "b"]
    assert b["query_id"].nunique() == 10  # one triplet per query before second triplets
    assert runs.select_triplets(t, 6, seed=0).triplets.equals(sel.triplets)


def test_batches_have_no_repeated_query_or_positive() -> None:
    keys = [frozenset({f"q:{i % 5}", f"p:{i % 7}"}) for i in range(40)]
    batches = training.make_batches(keys, batch_size=4, rng=np.random.default_rng(0))
    assert sorted(i for b in batches for i in b) == list(range(40))
    for b in batches:
        assert len(b) <= 4
        seen: list[str] = [k for i in b for k in keys[i]]
        assert len(seen) == len(set(seen))


def test_source_hash_depends_on_content_and_order() -> None:
    t = _table({"a": [(1, 1), (2, 1)]})
    assert runs.source_hash(t) == runs.source_hash(t.copy())
    assert runs.source_hash(t) != runs.source_hash(t.iloc[::-1])
    assert runs.source_hash(t) != runs.source_hash(t.assign(negative="other"))


# ------------------------------------------------------------------------------------------------------ agreement


def test_agreement_table() -> None:
    down = pd.Series({"a": 0.30, "b": 0.35, "c": 0.40, "d": 0.45})
    scores = {"same": pd.Series({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}),
              "reversed": pd.Series({"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0}),
              "one_swap": pd.Series({"a": 1.0, "b": 3.0, "c": 2.0, "d": 4.0}),
              "constant": pd.Series({"a": 1.0, "b": 1.0, "c": 1.0, "d": 1.0}),
              "partial": pd.Series({"a": 1.0, "b": 2.0, "z": 9.0})}
    agr = agreement.agreement_table(down, scores, n_boot=200, seed=0).set_index("score")
    assert agr.loc["same", "kendall_tau"] == pytest.approx(1) and agr.loc["same", "spearman"] == pytest.approx(1)
    assert agr.loc["reversed", "kendall_tau"] == pytest.approx(-1)
    assert agr.loc["one_swap", "kendall_tau"] == pytest.approx(4 / 6)  # 5 concordant − 1 discordant of 6 pairs
    assert agr.loc["one_swap", "spearman"] == pytest.approx(0.8)  # 1 − 6·Σd²/(n(n²−1)) = 1 − 12/60
    assert np.isnan(agr.loc["constant", "kendall_tau"])
    assert agr.loc["partial", "n_sources"] == 2
    for name in ("same", "reversed", "one_swap"):
        row = agr.loc[name]
        assert -1 <= row["kendall_ci_low"] <= row["kendall_ci_high"] <= 1
    assert agr.loc["same", "kendall_ci_low"] == pytest.approx(1)  # every resample keeps the order


def test_scores_from_result_means_terms() -> None:
    sources = pd.DataFrame({"source": ["a", "b"], "eci_sem": [0.2, 0.1], "eci_v1": [1.0, 2.0]})
    trip = pd.DataFrame({"source": ["a", "a", "b"], "c": [0.2, 0.4, 1.0], "h": [1.0, 0.0, 0.5],
                         "rho": [0.1, 0.3, 0.5], "w": [0.0, 0.2, 0.4]})
    s = agreement.scores_from_result(sources, trip)
    assert list(s) == list(agreement.SCORE_NAMES)
    assert s["c"].to_dict() == pytest.approx({"a": 0.3, "b": 1.0})
    assert s["eci_sem"].to_dict() == {"a": 0.2, "b": 0.1}


# -------------------------------------------------------------------------------- pipeline with stubbed training


class _Stub:
    """Stands in for the model: fine_tune/evaluate_model are monkeypatched; records what was trained."""

    def __init__(self, interrupt_after: int | None = None) -> None:
        self.trained: list[pd.DataFrame] = []
        self.interrupt_after = interrupt_after

    def fine_tune(self, base, triplets, config, seed, progress=False, desc=""):
        if self.interrupt_after is not None and len(self.trained) >= self.interrupt_after:
            raise KeyboardInterrupt
        self.trained.append(triplets)
        return ("model", triplets["source"].iloc[0], seed)

    @staticmethod
    def evaluate_model(model, data, progress=False):
        if model == "base":
            return {"ndcg10": 0.2, "mrr10": 0.2, "recall100": 0.5}
        _, source, seed = model
        value = {"a": 0.3, "b": 0.4, "c": 0.5, "d": 0.6}[source] + 0.01 * seed
        return {"ndcg10": value, "mrr10": value, "recall100": min(1.0, value + 0.3)}


class _Enc:
    model_id = "stub-encoder"


def _stub_scorer(selected, encoder, config):
    order = {"a": 1.0, "b": 2.0, "c": 4.0, "d": 3.0}
    s = pd.Series({src: order[src] for src in sorted(selected["source"].unique())})
    return {"eci_sem": s.rename("eci_sem"), "rho": (-s).rename("rho")}, None


EVAL = EvalData(queries={"e1": "Query 2", "e2": "query 5?"}, corpus={"d1": "pos 2", "d2": "pos 5", "d3": "x"},
                qrels={"e1": {"d1": 1}, "e2": {"d2": 1}})


def _run(monkeypatch, stub: _Stub, t: pd.DataFrame, cache: Path, seeds=(0, 1), data: EvalData = None,
         allow_weak_eval: bool = True) -> v.ValidationResult:
    monkeypatch.setattr(runs, "fine_tune", stub.fine_tune)
    monkeypatch.setattr(runs, "evaluate_model", stub.evaluate_model)
    train = training.TrainConfig(per_source=6, batch_size=4, max_seq_length=None)  # the stub base cannot be truncated
    return v.run_validation(t, data or EVAL, train=train, seeds=seeds, cache_dir=cache,
                            calibrate=False, progress=False, n_boot=50, scorer=_stub_scorer,
                            loaded=(_Enc(), "base"), allow_weak_eval=allow_weak_eval)


def test_no_evaluation_query_reaches_training(monkeypatch, tmp_path: Path) -> None:
    t = _table({"a": [(q, 1) for q in range(10)], "b": [(q, 1) for q in range(10)]})
    stub = _Stub()
    result = _run(monkeypatch, stub, t, tmp_path / "cache")
    eval_keys = {normalise_query(q) for q in EVAL.queries.values()}
    assert stub.trained and all(not set(tr["query"].map(normalise_query)) & eval_keys for tr in stub.trained)
    assert result.leaks.removed_triplets == 4 and result.leaks.removed_queries == 2
    assert result.summary["leak_guard"]["removed_triplets"] == 4


def test_interrupted_run_resumes_and_new_source_trains_alone(monkeypatch, tmp_path: Path) -> None:
    t = _table({"a": [(q, 1) for q in range(10, 20)], "b": [(q, 1) for q in range(10, 20)],
                "c": [(q, 1) for q in range(10, 20)]})
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        _run(monkeypatch, _Stub(interrupt_after=3), t, cache)
    assert len(list((cache / "runs").glob("*.json"))) == 4  # the base + 3 completed trainings
    stub = _Stub()
    result = _run(monkeypatch, stub, t, cache)
    assert len(stub.trained) == 3  # 3 sources × 2 seeds − 3 already cached
    assert result.summary["runs"] == {"total": 7, "from_cache": 4, "trained_now": 3}
    table = result.table.set_index("source")
    assert table.loc["c", "ndcg10_mean"] == pytest.approx(0.505)
    assert table.loc["c", "ndcg10_sd"] == pytest.approx(np.std([0.5, 0.51], ddof=1))
    assert table.loc["c", "downstream_rank"] == 1 and np.isnan(table.loc[runs.BASE_SOURCE, "downstream_rank"])
    assert table.loc["a", "delta_ndcg10"] == pytest.approx(0.105)
    # a fourth source over the same queries: only it is trained
    t4 = pd.concat([t, _table({"d": [(q, 1) for q in range(10, 20)]})], ignore_index=True)
    stub4 = _Stub()
    result4 = _run(monkeypatch, stub4, t4, cache)
    assert {tr["source"].iloc[0] for tr in stub4.trained} == {"d"} and len(stub4.trained) == 2
    agr = result4.agreement.set_index("score")
    assert agr.loc["eci_sem", "kendall_tau"] == pytest.approx(4 / 6)  # scores a<b<d<c vs downstream a<b<c<d
    assert agr.loc["rho", "kendall_tau"] == pytest.approx(-4 / 6)


def test_guard_refuses_a_saturated_or_tiny_eval_set_before_training(monkeypatch, tmp_path: Path) -> None:
    from ecisem_core.errors import InputError

    t = _table({"a": [(q, 1) for q in range(10, 20)], "b": [(q, 1) for q in range(10, 20)]})
    stub = _Stub()
    with pytest.raises(InputError, match="has 2 queries"):  # EVAL has 2 queries
        _run(monkeypatch, stub, t, tmp_path / "c1", allow_weak_eval=False)
    assert stub.trained == []
    big = EvalData(queries={f"e{i}": f"eval question {i}" for i in range(25)},
                   corpus={f"d{i}": f"passage {i}" for i in range(25)},
                   qrels={f"e{i}": {f"d{i}": 1} for i in range(25)})
    saturated = _Stub()
    monkeypatch.setattr(saturated, "evaluate_model", lambda model, data, progress=False:
                        {"ndcg10": 0.95, "mrr10": 0.95, "recall100": 1.0} if model == "base"
                        else _Stub.evaluate_model(model, data))
    with pytest.raises(InputError, match=r"already reaches nDCG@10 0\.950"):
        _run(monkeypatch, saturated, t, tmp_path / "c2", data=big, allow_weak_eval=False)
    assert saturated.trained == []
    # with headroom it trains, reports the seed-to-seed agreement and no noise warning (sd 0.007 vs spread 0.1)
    ok = _run(monkeypatch, _Stub(), t, tmp_path / "c3", data=big, allow_weak_eval=False)
    assert ok.summary["seed_kendall_tau"] == pytest.approx(1.0) and ok.summary["warnings"] == []
    weak = _run(monkeypatch, _Stub(), t, tmp_path / "c4")  # insisted: runs, and says why it should not have
    assert any("2 queries" in w for w in weak.summary["warnings"])


def test_noise_warning_and_seed_agreement() -> None:
    from ecisem_core.downstream import guards

    table = pd.DataFrame({"ndcg10_mean": [0.50, 0.51], "ndcg10_sd": [0.02, 0.03], "n_seeds": [3, 3]})
    assert "seed noise" in guards.noise_warning(table)
    assert "one seed" in guards.noise_warning(table.assign(n_seeds=1))
    assert guards.noise_warning(table.assign(ndcg10_mean=[0.4, 0.6])) is None
    runs_ = pd.DataFrame({"source": list("abcabc"), "seed": [0, 0, 0, 1, 1, 1],
                          "ndcg10": [0.1, 0.2, 0.3, 0.1, 0.3, 0.2]})
    assert guards.seed_kendall(runs_) == pytest.approx(1 / 3)
    assert guards.seed_kendall(runs_[runs_.seed == 0]) is None


def test_cache_roundtrip_and_corruption(tmp_path: Path) -> None:
    key = runs.RunKey("abc", "model", {"epochs": 1}, "fp", 0)
    run = runs.RunResult("a", 0, {"ndcg10": 0.5, "mrr10": 0.4, "recall100": 0.9}, 10, 10, 1.5, key.digest())
    path = runs.write_cached(tmp_path, key, run)
    back = runs.read_cached(tmp_path, key, "a")
    assert back is not None and back.cached and back.metrics == run.metrics
    assert runs.read_cached(tmp_path, runs.RunKey("abc", "model", {"epochs": 1}, "fp", 1), "a") is None
    assert runs.read_cached(tmp_path, runs.RunKey("abc", "model", {"epochs": 2}, "fp", 0), "a") is None
    path.write_text("{ truncated", encoding="utf-8")
    assert runs.read_cached(tmp_path, key, "a") is None
    assert not list(tmp_path.rglob("*.tmp*"))


def test_train_config_validation() -> None:
    from ecisem_core.errors import InputError

    with pytest.raises(InputError, match="batch_size"):
        training.TrainConfig(batch_size=1)
    with pytest.raises(InputError, match="lr"):
        training.TrainConfig(lr=0)


def test_help_documents_every_option() -> None:
    from ecisem_core.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices["validate"]
    text = " ".join(sub.format_help().split())  # undo line wrapping
    for flag in ("--eval", "--base-model", "--per-source", "--epochs", "--lr", "--batch-size", "--seeds", "--out",
                 "--calibrate", "--no-calibrate", "--cache-dir", "--eval-queries", "--eval-passages", "--config"):
        assert flag in text
    for default in ("default 500", "default 1)", "default 2e-05", "default 32", "default: 0", "default validation",
                    "default 5000"):
        assert default in text, default


# ---------------------------------------------------------------------------------------- end to end (real model)


def _write_sources(folder: Path, n: int) -> list[Path]:
    """Four sources over the same n MS MARCO training queries: BM25 negatives, LLM-generated negatives
    (negative_num 2 and 3), random negatives (other queries' positives) and the boilerplate line (negative_num 1)."""
    bm25 = pd.read_csv(SHARED / "bm25_train.csv")
    llm = pd.read_json(SHARED / "llm_generated_negatives.jsonl", lines=True)
    queries = bm25["query_text"].iloc[:n].tolist()
    bm = bm25[bm25["query_text"].isin(queries)]
    paths = [folder / "bm25.csv", folder / "llm.jsonl", folder / "random.jsonl", folder / "boilerplate.jsonl"]
    bm.to_csv(paths[0], index=False)
    gen = llm[llm["query_text"].isin(queries)]
    gen[gen["negative_num"].isin([2, 3])].to_json(paths[1], orient="records", lines=True)
    rnd = bm.assign(hard_negative=np.roll(bm["gold_passage"].to_numpy(), 7))
    rnd.to_json(paths[2], orient="records", lines=True)
    gen[gen["negative_num"] == 1].to_json(paths[3], orient="records", lines=True)
    return paths


@pytest.mark.slow
def test_validate_command_end_to_end(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("ECISEM_CACHE_DIR", str(tmp_path / "emb-cache"))
    monkeypatch.chdir(tmp_path)
    from ecisem_core.cli import main

    data = _write_sources(tmp_path, n=30)
    out = tmp_path / "out"
    argv = ["validate", *map(str, data), "--eval", str(SHARED / "msmarco_dev_beir.tsv"), "--eval-queries", "40",
            "--eval-passages", "150", "--per-source", "24", "--batch-size", "8", "--max-seq-length", "128",
            "--seeds", "0", "1", "--out", str(out), "--bootstrap", "200", "--quiet"]
    # MS MARCO dev is saturated for MiniLM (nDCG@10 > 0.9 untrained): refused before any training ...
    assert main(argv) == 2
    assert "refusing to train" in capsys.readouterr().err and not (out / "summary.json").exists()
    argv.append("--allow-weak-eval")  # ... unless insisted, and then the outputs say so
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    assert "leave-one-source-out" in stdout

    # validation.csv: the base + 4 sources, same budget each, metrics in range
    table = pd.read_csv(out / "validation.csv")
    assert table["source"].tolist()[0] == runs.BASE_SOURCE
    assert set(table["source"]) == {runs.BASE_SOURCE, "bm25", "llm", "random", "boilerplate"}
    trained = table[table["trained"]]
    assert (trained["n_triplets"] == 24).all() and (trained["n_seeds"] == 2).all()
    for m in retrieval.METRICS:
        assert table[f"{m}_mean"].between(0, 1).all(), m
        assert (trained[f"{m}_sd"] >= 0).all()
    assert table.loc[0, "ndcg10_mean"] > 0.3  # MiniLM is already a good retriever on MS MARCO
    assert sorted(trained["downstream_rank"]) == pytest.approx(sorted(
        trained["ndcg10_mean"].rank(ascending=False, method="min")))
    assert np.allclose(trained["delta_ndcg10"], trained["ndcg10_mean"] - table.loc[0, "ndcg10_mean"])

    # agreement.csv: every score, coefficients and CIs in [-1, 1]
    agr = pd.read_csv(out / "agreement.csv")
    assert agr["score"].tolist() == list(agreement.SCORE_NAMES)
    assert (agr["n_sources"] == 4).all()
    for col in ("kendall_tau", "kendall_ci_low", "kendall_ci_high", "spearman", "spearman_ci_low",
                "spearman_ci_high"):
        finite = agr[col].dropna()
        assert finite.between(-1, 1).all(), col
    scores = pd.read_csv(out / "scores.csv", index_col="source")
    assert set(scores.index) == {"bm25", "llm", "random", "boilerplate"}
    assert (scores["eci_sem"] > 0).all() and scores[["c", "h", "rho"]].stack().between(0, 1).all()

    html = (out / "agreement.html").read_text(encoding="utf-8")
    assert "plotly" in html.lower() and len(html) > 1_000_000  # plotly.js embedded: opens offline

    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["n_sources"] == 4 and summary["n_seeds"] == 2 and summary["seeds"] == [0, 1]
    assert summary["eval"]["queries"] == 40 and summary["eval"]["passages"] == 150
    assert summary["leak_guard"]["removed_triplets"] == 0
    assert summary["budget"]["per_source_used"] == 24 and summary["shared_queries"] == 30
    assert summary["runs"] == {"total": 9, "from_cache": 1, "trained_now": 8}  # the base ran before the refusal
    assert any("already reaches nDCG@10" in w for w in summary["warnings"])
    assert summary["seed_kendall_tau"] is None or -1 <= summary["seed_kendall_tau"] <= 1
    cal = summary["calibration"]
    assert cal["calibrated"] and cal["rests_on"]["sources"] == 4 and cal["rests_on"]["seeds"] == 2
    loo = cal["agreement"]["leave_one_out"]["kendall_tau"]
    assert loo is None or -1 <= loo <= 1

    config = ScoreConfig.load(out / "calibrated_config.json")
    assert config.tau in (0.02, 0.05, 0.1) and config.kappa in (192.0, 768.0, 3072.0)  # d = 384

    # rerun: everything comes from the cache
    assert main(argv) == 0
    again = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert again["runs"] == {"total": 9, "from_cache": 9, "trained_now": 0}
    assert pd.read_csv(out / "validation.csv").equals(table)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".ecisem")]  # embedding cache went to the env dir
