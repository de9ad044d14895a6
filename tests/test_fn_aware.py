"""The false-negative-aware score: a source of paraphrases of the positive must not outrank a clean hard source
once false negatives are penalised, and the source table says how much of each score flagged triplets make."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecisem_core.config import ScoreConfig
from ecisem_core.metric.terms import fn_discount
from ecisem_core.errors import InputError
from ecisem_core.score import eci_sem_without, prepare, score_prepared

D = 48
N = 15
WORDS = [f"w{i:03d}" for i in range(2000)]


class TableEncoder:
    """Vectors looked up by text (an encoder stand-in with the project's Encoder protocol)."""

    model_id = "table-encoder"
    role_aware = False
    cacheable = False

    def __init__(self, vectors: dict[str, np.ndarray]):
        self.vectors = vectors

    def encode(self, texts, role, progress=False):
        return np.stack([self.vectors[t] for t in texts]).astype(np.float32)

    def tokenize(self, text):
        return text.split()


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x)


def synthetic(seed: int = 0) -> tuple[pd.DataFrame, TableEncoder]:
    """15 queries; source ``paraphrase``: negatives that restate the positive in other words (their vectors sit on
    the positive's); source ``hard``: topically close negatives that do not answer (closer to the query than
    random, clearly below the positive)."""
    rng = np.random.default_rng(seed)
    words = iter(rng.permutation(WORDS))
    vec, rows = {}, []
    for i in range(N):
        q = unit(rng.normal(size=D))
        p = unit(q + 0.9 * unit(rng.normal(size=D)))
        texts = {k: " ".join(next(words) for _ in range(12)) for k in ("q", "p", "para", "hard")}
        vec[texts["q"]], vec[texts["p"]] = q, p
        vec[texts["para"]] = unit(p + 0.08 * unit(rng.normal(size=D)))
        vec[texts["hard"]] = unit(q + 1.6 * unit(rng.normal(size=D)))
        for source, neg in (("paraphrase", texts["para"]), ("hard", texts["hard"])):
            rows.append({"query_id": f"q{i}", "query": texts["q"], "positive": texts["p"], "negative": neg,
                         "source": source})
    return pd.DataFrame(rows), TableEncoder(vec)


@pytest.fixture(scope="module")
def prepared():
    table, enc = synthetic()
    return prepare(table, enc, ScoreConfig(bootstrap=50, stability_trials=10))


def ranking(prepared, **settings) -> list[str]:
    result = score_prepared(prepared, ScoreConfig(bootstrap=50, stability_trials=10, **settings))
    return result.sources.sort_values("eci_sem", ascending=False)["source"].tolist()


def test_paraphrases_are_flagged(prepared):
    flags = prepared.flags.assign(source=prepared.triplets["source"])
    rate = flags.groupby("source")["fn_flag"].mean()
    assert rate["paraphrase"] >= 0.8 and rate["hard"] <= 0.2


def test_published_construction_puts_paraphrases_first(prepared):
    assert ranking(prepared) == ["paraphrase", "hard"]  # the failure the FN-aware score exists to fix


@pytest.mark.parametrize("phi", [2.0, 4.0])
def test_fn_penalty_drops_paraphrases_below_the_clean_hard_source(prepared, phi):
    assert ranking(prepared, fn_penalty=phi) == ["hard", "paraphrase"]


def test_source_table_reports_the_share_from_flagged_triplets(prepared):
    s = score_prepared(prepared, ScoreConfig(bootstrap=50, stability_trials=10)).sources.set_index("source")
    assert s.loc["paraphrase", "fn_share"] > 0.8 and s.loc["hard", "fn_share"] < 0.2
    assert s.loc["hard", "rank_no_fn"] == 1 and s.loc["paraphrase", "rank_no_fn"] == 2
    assert np.isclose(s.loc["hard", "eci_sem_no_fn"], s.loc["hard", "eci_sem"], rtol=0.25)


@pytest.mark.parametrize("phi", [0.0, 2.0])
def test_the_what_if_for_any_set_of_triplets(prepared, phi):
    """eci_sem_without(drop = the flagged triplets) is the score table's eci_sem_no_fn; dropping nothing is
    ECI_sem itself; dropping a whole source gives 0."""
    config = ScoreConfig(bootstrap=50, stability_trials=10, fn_penalty=phi)
    s = score_prepared(prepared, config, uncertainty=False).sources.set_index("source")
    flagged = prepared.flags["fn_flag"].to_numpy(bool)
    got = eci_sem_without(prepared, config, flagged)
    assert got == pytest.approx(s["eci_sem_no_fn"].to_dict(), rel=1e-12)
    assert eci_sem_without(prepared, config, np.zeros_like(flagged)) == pytest.approx(s["eci_sem"].to_dict(),
                                                                                         rel=1e-12)
    whole = (prepared.triplets["source"] == "hard").to_numpy()
    assert eci_sem_without(prepared, config, whole, sources=["hard"]) == {"hard": 0.0}
    with pytest.raises(InputError, match="one bool per triplet"):
        eci_sem_without(prepared, config, flagged[:-1])


def test_penalty_zero_is_the_published_score_bit_for_bit(prepared):
    a = score_prepared(prepared, ScoreConfig(bootstrap=50, stability_trials=10)).sources
    b = score_prepared(prepared, ScoreConfig(bootstrap=50, stability_trials=10, fn_penalty=0.0)).sources
    pd.testing.assert_frame_equal(a, b)


def test_fn_discount_hand_checked():
    assert fn_discount(np.array([0.0, 0.5, 0.9]), 2.0).tolist() == pytest.approx([1.0, 0.25, 0.01])
    assert fn_discount(np.array([0.3, 1.0]), 0.0).tolist() == [1.0, 1.0]
    assert fn_discount(np.array([1.0]), 1.0)[0] == pytest.approx(1e-6)


def test_a_stronger_encoder_can_judge_the_false_negatives():
    """The target encoder scores; --fn-encoder judges which negatives answer the query. A target that cannot
    tell (random vectors) flags at chance; with the informative judge the paraphrases are flagged again."""
    table, strong = synthetic()
    rng = np.random.default_rng(7)
    weak = TableEncoder({t: unit(rng.normal(size=D)) for t in strong.vectors})
    weak.model_id = "random-table"
    config = ScoreConfig(bootstrap=50, stability_trials=10)
    alone = prepare(table, weak, config)
    judged = prepare(table, weak, config, fn_encoder=strong)
    para = (judged.triplets["source"] == "paraphrase").to_numpy()
    judged_flags, alone_flags = judged.flags["fn_flag"].to_numpy(), alone.flags["fn_flag"].to_numpy()
    assert judged_flags[para].mean() >= 0.8 and judged_flags[~para].mean() <= 0.2
    assert abs(alone_flags[para].mean() - alone_flags[~para].mean()) < 0.4   # the random target cannot tell
    assert np.array_equal(judged.s_qn, alone.s_qn)            # the score itself still uses the target encoder
    assert ranking(judged, fn_penalty=4.0)[-1] == "paraphrase"


@pytest.mark.parametrize("name", ["weak-start", "adapt"])
def test_the_study_presets_do_not_put_paraphrases_first(prepared, name):
    """The presets fitted on the validity study (README) rank the source of paraphrases below the clean hard one
    (the published construction puts it first: test above)."""
    from ecisem_core.metric.presets import get_preset

    cfg = get_preset(name).config
    settings = {k: getattr(cfg, k) for k in ("tau", "alpha", "beta", "gamma", "fn_penalty")}
    settings["kappa"] = None if cfg.kappa is None else cfg.kappa / 384 * D  # the same multiple of d
    assert ranking(prepared, **settings) == ["hard", "paraphrase"]


def test_progress_counts_every_log_det_of_the_uncertainty_step(prepared):
    """score_prepared(progress=…) reports (done, total) up to B + trials per source; the numbers do not change."""
    config = ScoreConfig(bootstrap=50, stability_trials=10)
    seen = []
    with_cb = score_prepared(prepared, config, progress=lambda d, t: seen.append((d, t))).sources
    assert seen and seen[-1] == (120, 120) and all(t == 120 for _, t in seen)  # (50 + 10) × 2 sources
    pd.testing.assert_frame_equal(with_cb, score_prepared(prepared, config).sources)
