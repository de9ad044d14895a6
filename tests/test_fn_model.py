"""Tests of ecisem_core.curation.fn_model: labels from verdicts, training gate, cross-validated AUC, predict, resample."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ecisem_core.curation.annotations import AnnotationStore
from ecisem_core.errors import InputError
from ecisem_core.curation.fn_model import (
    MODEL_FEATURES,
    N_MIN,
    NotEnoughVerdicts,
    labels_from_verdicts,
    model_features,
    predict,
    resample,
    train_fn_model,
)
from ecisem_core.curation.negatives import flag_triplets


def labelled(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Planted false negatives (repeat the positive's answer terms; margin around 0; close to the positive)
    against hard true negatives (same topic; margin ≈ +0.05; no answer terms). Queries differ in similarity level."""
    rng = np.random.default_rng(seed)
    rows, y = [], []
    for i in range(n):
        fn = i % 2 == 0
        s_qp = rng.uniform(0.4, 0.9)
        delta = rng.normal(0.0, 0.04) if fn else rng.normal(0.05, 0.04)
        answer = f"ans{i}a ans{i}b ans{i}c ans{i}d"
        rows.append(
            {
                "query_id": f"q{i // 2}",
                "negative_id": f"n{i}",
                "query": f"what about topic{i // 2}",
                "positive": f"topic{i // 2} {answer}",
                "negative": f"topic{i // 2} {answer} x{i}" if fn else f"topic{i // 2} other{i}a other{i}b x{i}",
                "source": "syn",
                "s_qp": s_qp,
                "s_qn": s_qp - delta,
                "s_pn": rng.uniform(0.75, 0.92) if fn else rng.uniform(0.5, 0.85),
            }
        )
        y.append(1.0 if fn else 0.0)
    return pd.DataFrame(rows), np.array(y)


def test_features_are_the_documented_ones():
    t, _ = labelled(6)
    f = model_features(t)
    assert tuple(f.columns) == MODEL_FEATURES and len(f) == 6 and np.isfinite(f.to_numpy()).all()
    assert f["log_n_tokens"].iloc[1] == pytest.approx(np.log1p(4))  # "topic0 other1a other1b x1"


def test_not_enough_verdicts_is_a_clear_message():
    t, y = labelled(40)
    y = y.copy()
    y[np.flatnonzero(y == 1)[3:]] = np.nan  # only 3 false negatives left
    with pytest.raises(NotEnoughVerdicts) as err:
        train_fn_model(t, y)
    assert str(err.value).endswith(
        f"needs at least {N_MIN} verdicts of each class; have 3 false negative(s) and 20 true negative(s)"
    )
    assert isinstance(err.value, InputError)
    with pytest.raises(InputError, match="labels for"):
        train_fn_model(t, y[:5])


def test_trained_model_ranks_planted_false_negatives_and_reports_cv_auc():
    t, y = labelled()
    model = train_fn_model(t, y, seed=0)
    assert model.n_false_negative == 60 and model.n_true_negative == 60 and model.folds == 5
    assert 0.9 < model.cv_auc <= 1.0 and model.cv_auc_std >= 0
    assert 0.0 <= model.baseline_auc <= 1.0
    assert set(model.coefficients) == set(MODEL_FEATURES)
    assert model.coefficients["key_coverage"] > 0  # answer-term containment raises P(false negative)
    fresh, y2 = labelled(40, seed=7)
    p = predict(model, fresh)
    assert p.shape == (40,) and ((p >= 0) & (p <= 1)).all()
    assert p[y2 == 1].mean() > p[y2 == 0].mean() + 0.5
    assert np.array_equal(model.predict(fresh), p)
    assert predict(model, fresh.iloc[:0]).shape == (0,)


def test_unlabelled_rows_are_ignored_and_results_are_reproducible():
    t, y = labelled()
    y2 = y.copy()
    y2[:10] = np.nan
    a = train_fn_model(t, y2, seed=3)
    b = train_fn_model(t, y2, seed=3)
    assert a.n_false_negative + a.n_true_negative == 110
    assert a.cv_auc == b.cv_auc and a.coefficients == b.coefficients


def test_labels_from_store_verdicts_end_to_end(tmp_path):
    t, y = labelled(60)
    flags = flag_triplets(t)
    store = AnnotationStore(tmp_path / "a.sqlite")
    b = store.create_batch("all", pd.concat([t, flags], axis=1))
    for item, label in zip(store.items(b)["id"], y):
        store.record_verdict(int(item), "alice", "false_negative" if label else "true_negative")
    store.record_verdict(int(store.items(b)["id"].iloc[0]), "bob", "true_negative")  # tie on item 0
    labels = labels_from_verdicts(t, store.verdicts(b))
    assert np.isnan(labels[0]) and np.array_equal(labels[1:], y[1:])
    model = train_fn_model(t, labels)
    assert model.n_false_negative == 29 and model.n_true_negative == 30
    with pytest.raises(InputError, match="negative_id"):
        labels_from_verdicts(t.drop(columns=["negative_id"]), store.verdicts(b))
    assert np.isnan(labels_from_verdicts(t, store.verdicts(b).iloc[:0])).all()


def test_resample_modes_and_errors():
    t = pd.DataFrame({"negative": ["a", "b", "c", "d"]})
    p = np.array([0.95, 0.1, 0.5, 0.7])
    assert resample(t, p, "drop", 0.5)["negative"].tolist() == ["b"]
    w = resample(t, p, "weight", 0.5)
    assert w["weight"].tolist() == pytest.approx([0.05, 1.0, 0.5, 0.3])
    junk = np.array([False, True, False, False])
    assert resample(t, p, "weight", 0.5, junk=junk)["negative"].tolist() == ["a", "c", "d"]
    assert resample(t, p, "drop", 0.8)["negative"].tolist() == ["b", "c", "d"]
    with pytest.raises(InputError, match="mode"):
        resample(t, p, "shrink")
    with pytest.raises(InputError, match="probabilities"):
        resample(t, np.array([0.1, 2.0, 0.1, 0.1]))
    with pytest.raises(InputError, match="4 triplets"):
        resample(t, p[:2])
