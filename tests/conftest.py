"""Shared fixtures: offline model loading, paths to ../shared data, tiny synthetic triplets."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
EXTERNAL = SHARED / "data" / "external"


@pytest.fixture(scope="session")
def external() -> Path:
    """../shared/data/external (third-party data, read in place, never copied)."""
    if not EXTERNAL.exists():
        pytest.skip("../shared/data/external is not beside the checkout")
    return EXTERNAL


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    """Every test gets the same session-wide embedding cache and saved-views store, never the user's."""
    root = tmp_path_factory.getbasetemp() / "ecisem_cache"
    monkeypatch.setenv("ECISEM_CACHE_DIR", str(root))
    monkeypatch.setenv("ECISEM_VIEWS_DB", str(tmp_path_factory.getbasetemp() / "views" / "views.sqlite"))


@pytest.fixture(scope="session")
def default_encoder():
    from ecisem_core.embed.encoders import default_encoder as make

    return make()


BROWSER_RERUNS = 1
"""A real-browser test that fails is run once more (pytest-rerunfailures): on a busy 2-core machine a Streamlit
rerun can land between a click and its check. Both runs are reported; a test that fails twice fails."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("browser") and not item.get_closest_marker("flaky"):
            item.add_marker(pytest.mark.flaky(reruns=BROWSER_RERUNS, reruns_delay=2))
