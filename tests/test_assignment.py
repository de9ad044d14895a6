"""Dealing a batch's items to annotators with an overlap (curation/assignment.py), the store's assignment and
guidelines, and the annotator role (ui/roles.py)."""
from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ecisem_core.curation.annotations import AnnotationStore
from ecisem_core.curation.assignment import annotator_names, assign_items, load_table, shared_count
from ecisem_core.errors import InputError
from ecisem_core.ui import roles


def test_ten_items_two_annotators_twenty_percent_overlap_by_hand():
    a = assign_items(range(10), ["alice", "bob"], overlap=0.2)
    # round(0.2·10) = 2 shared items go to both; the other 8 alternate → 2 + 4 = 6 each; 12 rows in all
    assert len(a) == 12 and shared_count(10, 0.2) == 2
    assert a.groupby("annotator").size().to_dict() == {"alice": 6, "bob": 6}
    shared = a[a["shared"]]
    assert shared["item_id"].nunique() == 2 and shared.groupby("item_id").size().tolist() == [2, 2]
    assert set(a["item_id"]) == set(range(10))
    assert load_table(a).to_dict("records") == [{"annotator": "alice", "items": 6, "shared": 2},
                                                {"annotator": "bob", "items": 6, "shared": 2}]


def test_no_overlap_splits_and_full_overlap_with_everyone_gives_everything():
    a = assign_items(range(7), ["a", "b", "c"], overlap=0.0)
    assert len(a) == 7 and sorted(a.groupby("annotator").size().tolist()) == [2, 2, 3] and not a["shared"].any()
    b = assign_items(range(5), ["a", "b", "c"], overlap=1.0, per_shared=3)
    assert len(b) == 15 and b.groupby("annotator").size().tolist() == [5, 5, 5]
    one = assign_items([4, 9], ["solo"], overlap=0.5)
    assert one.values.tolist() == [[4, "solo", False], [9, "solo", False]]


def test_same_seed_same_deal_and_bad_input_is_named():
    assert assign_items(range(20), ["x", "y", "z"], 0.3, seed=4).equals(assign_items(range(20), ["x", "y", "z"], 0.3,
                                                                                       seed=4))
    with pytest.raises(InputError, match="named twice"):
        annotator_names(["alice", " alice "])
    with pytest.raises(InputError, match="at least one annotator"):
        annotator_names([" ", ""])
    with pytest.raises(InputError, match="between 0 and 1"):
        assign_items(range(3), ["a"], overlap=1.5)
    with pytest.raises(InputError, match="listed twice"):
        assign_items([1, 1], ["a"])


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 60), k=st.integers(1, 6), overlap=st.floats(0, 1), per=st.integers(1, 5),
       seed=st.integers(0, 99))
def test_every_item_dealt_shared_ones_to_distinct_annotators_loads_balanced(n, k, overlap, per, seed):
    names = [f"a{i}" for i in range(k)]
    a = assign_items(range(n), names, overlap, per, seed)
    per_item = a.groupby("item_id")["annotator"].agg(["size", "nunique"])
    assert set(per_item.index) == set(range(n)) and (per_item["size"] == per_item["nunique"]).all()
    want = min(per, k) if min(per, k) > 1 else 1
    n_shared = shared_count(n, overlap) if want > 1 else 0
    assert sorted(per_item["size"].tolist()) == sorted([want] * n_shared + [1] * (n - n_shared))
    loads = a.groupby("annotator").size().reindex(names, fill_value=0)
    assert loads.max() - loads.min() <= 1 + (want > 1)


def test_the_store_deals_items_and_each_annotator_sees_only_theirs(tmp_path):
    store = AnnotationStore(tmp_path / "a.sqlite")
    items = pd.DataFrame({"query": [f"q{i}" for i in range(6)], "positive": ["p"] * 6,
                          "negative": [f"n{i}" for i in range(6)]})
    b = store.create_batch("b", items)
    ids = store.items(b)["id"].tolist()
    assert store.progress(b, "alice").total == 6  # open to everyone before an assignment
    deal = assign_items(ids, ["alice", "bob"], overlap=1 / 3)  # 2 shared; 4 split → 4 each
    assert store.assign(b, deal) == 8
    got = store.assignments(b)
    assert got.groupby("annotator").size().to_dict() == {"alice": 4, "bob": 4} and got["shared"].sum() == 4
    mine = set(got.loc[got["annotator"] == "alice", "item_id"])
    assert store.progress(b, "alice").total == 4 and store.progress(b, "carol").total == 0
    assert store.next_item(b, "carol") is None
    seen = []
    while (item := store.next_item(b, "alice")) is not None:
        seen.append(item["id"])
        store.record_verdict(item["id"], "alice", "tn")
    assert set(seen) == mine and store.progress(b, "alice").done == 4
    with pytest.raises(InputError, match="not in batch"):
        store.assign(b, pd.DataFrame({"item_id": [999], "annotator": ["x"]}))
    assert len(store.assignments(b)) == 8  # the refused assignment changed nothing
    store.assign(b, got.iloc[0:0])  # open to everyone again; verdicts kept
    assert store.progress(b, "carol").total == 6 and store.progress(b, "alice").done == 4


def test_guidelines_are_saved_replaced_and_removed(tmp_path):
    store = AnnotationStore(tmp_path / "a.sqlite")
    b = store.create_batch("b")
    assert store.guidelines(b) == ""
    store.set_guidelines(b, "A false negative answers the query.\nJudge the text alone.")
    assert store.guidelines(b).endswith("Judge the text alone.")
    store.set_guidelines(b, "  ")
    assert store.guidelines(b) == ""
    with pytest.raises(InputError, match="no batch"):
        store.set_guidelines(99, "x")


def test_annotator_role_from_the_link_sticks_to_the_session_and_the_server_can_lock_it():
    session: dict = {}
    assert not roles.is_annotator({}, session, environ={})
    assert roles.is_annotator({"role": ["annotator"]}, session, environ={})
    assert roles.is_annotator({}, session, environ={})  # the link's parameter gone: still an annotator session
    assert roles.is_annotator({}, {}, environ={roles.ROLE_ENV: "Annotator"})
    assert not roles.is_annotator({"role": "researcher"}, {}, environ={roles.ROLE_ENV: "researcher"})
