"""The data root: typed paths are read only from inside it."""
from __future__ import annotations

import os

import pytest

from ecisem_core.errors import InputError
from ecisem_core.ui.paths import DATA_ROOT_ENV, DEFAULT_DATA_ROOT, data_root, relative_to_root, resolve_under_root


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "sub").mkdir(parents=True)
    (r / "sub" / "a.jsonl").write_text("{}\n")
    (tmp_path / "secret.txt").write_text("no")
    return r


def test_relative_and_absolute_paths_inside_are_accepted(root):
    assert resolve_under_root("sub/a.jsonl", root) == (root / "sub" / "a.jsonl").resolve()
    assert resolve_under_root(str(root / "sub" / "a.jsonl"), root) == (root / "sub" / "a.jsonl").resolve()
    assert resolve_under_root("  sub  ", root) == (root / "sub").resolve()
    assert relative_to_root(root / "sub" / "a.jsonl", root) == "sub/a.jsonl"


@pytest.mark.parametrize("bad", ["../secret.txt", "/etc/passwd", "sub/../../secret.txt", "~/x"])
def test_paths_outside_are_refused(root, bad):
    with pytest.raises(InputError, match="outside the data root"):
        resolve_under_root(bad, root)


def test_symlink_pointing_out_is_refused(root, tmp_path):
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    with pytest.raises(InputError, match="outside the data root"):
        resolve_under_root("link.txt", root)


def test_missing_and_empty(root):
    with pytest.raises(InputError, match="nothing at"):
        resolve_under_root("sub/none.jsonl", root)
    with pytest.raises(InputError, match="no path given"):
        resolve_under_root("   ", root)


def test_root_from_environment(monkeypatch, root):
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    assert data_root() == root.resolve()
    monkeypatch.delenv(DATA_ROOT_ENV)
    assert data_root() == DEFAULT_DATA_ROOT.resolve()


def test_default_data_root_is_created_on_first_use_but_a_named_one_is_not(monkeypatch, tmp_path):
    import ecisem_core.ui.paths as paths

    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)
    monkeypatch.setattr(paths, "DEFAULT_DATA_ROOT", tmp_path / "fresh" / "data")
    assert paths.ensure_data_root() == (tmp_path / "fresh" / "data").resolve()
    assert (tmp_path / "fresh" / "data").is_dir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "typo"))
    paths.ensure_data_root()
    assert not (tmp_path / "typo").exists()
