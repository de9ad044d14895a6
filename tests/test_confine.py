"""Read confinement (ecisem_core.confine): inside the dashboard's data root, files named *inside* an accepted folder
— a symbolic link in a data folder, the data files a Hugging Face ``state.json`` lists, the files of a model folder —
are refused when they lead out of the root; outside a confinement (the CLI) they are read as before."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pytest

from ecisem_core.confine import checked, checked_tree, confined_to, read_root
from ecisem_core.embed.encoders import SentenceTransformerEncoder, default_encoder
from ecisem_core.errors import InputError
from ecisem_core.io.load import read_triplets
from ecisem_core.ui.paths import resolve_tree_under_root

ROW = {"query_id": "q1", "query": "what is a cat", "positive": "a cat is a small feline",
       "negative": "dogs bark at night"}
SECRET = "the secret text outside the data root"


def _jsonl(path: Path, **over) -> Path:
    path.write_text(json.dumps({**ROW, **over}) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def layout(tmp_path):
    """root/ (the data root) and outside/ beside it, holding a data file with the secret text."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    _jsonl(outside / "secret.jsonl", negative=SECRET)
    return root, outside


def test_no_confinement_means_no_check(layout):
    root, outside = layout
    assert read_root() is None
    assert checked(outside / "secret.jsonl") == outside / "secret.jsonl"
    with confined_to(root):
        assert read_root() == root.resolve()
        assert checked(root / "x") == (root / "x").resolve()
        with pytest.raises(InputError, match="outside the data root"):
            checked(outside / "secret.jsonl")
        with pytest.raises(InputError, match="outside the data root"):
            checked(root / ".." / "outside" / "secret.jsonl")
    assert read_root() is None  # restored on leaving the block


def test_symlink_inside_a_data_folder_is_refused_when_confined(layout):
    root, outside = layout
    folder = root / "folder_in"
    folder.mkdir()
    _jsonl(folder / "good.jsonl")
    os.symlink(outside / "secret.jsonl", folder / "evil.jsonl")
    with confined_to(root), pytest.raises(InputError) as err:
        read_triplets(folder)
    assert "outside the data root" in str(err.value) and "evil.jsonl" in str(err.value)
    # the CLI applies no data root: the same folder reads, link included
    table = read_triplets(folder).triplets
    assert SECRET in set(table["negative"])


def test_symlinked_file_inside_the_root_pointing_inside_is_read(layout):
    root, _ = layout
    folder = root / "folder_in"
    folder.mkdir()
    _jsonl(root / "real.jsonl")
    os.symlink(root / "real.jsonl", folder / "alias.jsonl")
    with confined_to(root):
        assert len(read_triplets(folder).triplets) == 1


def _saved_dataset(folder: Path, data_name: str, data_file: Path) -> Path:
    """A ``save_to_disk`` folder whose state.json names ``data_name``; the Arrow stream is written to ``data_file``."""
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: [v] for k, v in {**ROW, "negative": SECRET}.items()})
    with pa.OSFile(str(data_file), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    (folder / "state.json").write_text(json.dumps({"_data_files": [{"filename": data_name}]}), encoding="utf-8")
    (folder / "dataset_info.json").write_text("{}", encoding="utf-8")
    return folder


def test_state_json_naming_a_file_outside_is_refused_when_confined(layout):
    root, outside = layout
    folder = _saved_dataset(root / "hf", "../../outside/data-00000-of-00001.arrow",
                            outside / "data-00000-of-00001.arrow")
    with confined_to(root), pytest.raises(InputError) as err:
        read_triplets(folder)
    assert "outside the data root" in str(err.value)
    assert SECRET in set(read_triplets(folder).triplets["negative"])  # unconfined (CLI): read


def test_state_json_naming_a_file_inside_is_read(layout):
    root, _ = layout
    folder = _saved_dataset(root / "hf", "data-00000-of-00001.arrow", root / "hf" / "data-00000-of-00001.arrow")
    with confined_to(root):
        assert len(read_triplets(folder).triplets) == 1


def _model_dir() -> Path:
    return Path(default_encoder().name_or_path)


def test_model_folder_of_symlinks_to_a_model_outside_is_refused(layout):
    root, _ = layout
    real = _model_dir()
    mdl = root / "mdl"
    mdl.mkdir()
    for f in real.iterdir():
        os.symlink(f, mdl / f.name)
    with confined_to(root), pytest.raises(InputError, match="outside the data root"):
        SentenceTransformerEncoder(str(mdl))
    with pytest.raises(InputError, match="outside the data root"):
        resolve_tree_under_root("mdl", root)
    # the encoder made inside the confinement checks again just before it loads (a link added later)
    (mdl / "extra").mkdir()
    enc_dir = root / "mdl2"
    enc_dir.mkdir()
    (enc_dir / "modules.json").write_text("[]", encoding="utf-8")
    with confined_to(root):
        enc = SentenceTransformerEncoder(str(enc_dir))
    os.symlink(real / "config.json", enc_dir / "config.json")
    with pytest.raises(InputError, match="outside the data root"):
        enc.model


def test_checked_tree_accepts_a_folder_inside(layout):
    root, _ = layout
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.txt").write_text("x")
    assert checked_tree(root / "a", root) == (root / "a").resolve()
    assert checked_tree(Path("/anything"), None) == Path("/anything")  # no confinement: no check


def test_default_encoder_is_never_confined(layout):
    root, _ = layout
    with confined_to(root):
        enc = default_encoder()
    assert enc.root is None


def test_link_loop_is_a_clear_error(layout):
    root, _ = layout
    os.symlink(root / "loop_b", root / "loop_a")
    os.symlink(root / "loop_a", root / "loop_b")
    with confined_to(root), pytest.raises(InputError):
        checked(root / "loop_a")
