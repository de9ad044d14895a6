"""The bad-input corpus of test_bad_inputs (issue 14) through the dashboard in AppTest: every file as an upload and
as a path under the data root, plus the dashboard-only cases (a NUL byte or 300 characters in ``ds=path:``, a folder
that is not a model as the encoder, a symlink loop). No exception reaches the page; a file that cannot be read gets a
short error naming it (never a traceback or a server path)."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest, app_test
from test_app import APP, TIMEOUT, _NavigationPagesManager, demo_cache  # noqa: F401 - the fixture
from test_bad_inputs import FILES

from ecisem_core.ui.data import UPLOAD_TYPES
from ecisem_core.ui.projections import WARM_UP_ENV
from ecisem_core.ui.paths import DATA_ROOT_ENV
from ecisem_core.ui.state import K

TRACEBACK_MARKS = ("Traceback (most recent call last)", 'File "/', "site-packages", "ecisem_core/")


@pytest.fixture(autouse=True)
def _env(monkeypatch, tmp_path):
    monkeypatch.setattr(app_test, "PagesManager", _NavigationPagesManager)
    monkeypatch.setenv(WARM_UP_ENV, "0")
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv(DATA_ROOT_ENV, str(root))
    return root


def _content(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")


def _shown(at: AppTest) -> str:
    parts = [str(getattr(e, "value", "")) for e in [*at.error, *at.warning, *at.markdown, *at.caption, *at.info]]
    return "\n".join(parts)


def _problems(at: AppTest, case: str) -> list[str]:
    out = []
    if at.exception:
        out.append(f"{case}: exception on the page: {[e.value for e in at.exception][:1]}")
    text = _shown(at)
    for mark in TRACEBACK_MARKS:
        if mark in text:
            out.append(f"{case}: {mark!r} shown on the page")
    return out


def _app() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_every_corpus_file_as_an_upload(demo_cache):
    at = _app()
    at.button_group(key=K.DS_MODE).set_value("upload").run()
    problems = []
    uploadable = {c: v for c, v in FILES.items() if v[0].rsplit(".", 1)[-1].lower() in UPLOAD_TYPES}
    assert len(uploadable) >= len(FILES) - 5  # the rest (no or another extension) the uploader itself refuses
    for case, (fname, content) in uploadable.items():
        at.file_uploader(key=K.DS_UPLOAD).set_value((fname, _content(content), "application/octet-stream")).run()
        problems += _problems(at, case)
    assert not problems, "\n".join(problems)


def test_every_corpus_file_as_a_path_under_the_data_root(demo_cache, _env):
    root = _env
    for case, (fname, content) in FILES.items():
        (root / case).mkdir()
        (root / case / fname).write_bytes(_content(content))
    at = _app()
    at.button_group(key=K.DS_MODE).set_value("path").run()
    problems = []
    for case, (fname, _) in FILES.items():
        at.text_input(key=K.DS_PATH).set_value(f"{case}/{fname}").run()
        problems += _problems(at, case)
    assert not problems, "\n".join(problems)


def test_dashboard_only_cases(demo_cache, _env):
    root = _env
    (root / "loop").symlink_to(root / "loop")
    (root / "notmodel").mkdir()
    (root / "notmodel" / "readme.txt").write_text("hello")
    cases = {
        "nul byte in ds=path:": {"ds": "path:a\x00b.jsonl"},
        "300-character path": {"ds": "path:" + "x" * 300},
        "4,000-character path": {"ds": "path:" + "/".join(["y" * 250] * 16)},
        "symlink loop": {"ds": "path:loop"},
        "non-model folder as the encoder": {"enc": "path:notmodel"},
        "nul byte in enc=path:": {"enc": "path:m\x00"},
        "unknown encoder kind": {"enc": "banana"},
    }
    problems = []
    for case, params in cases.items():
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.query_params.update(params)
        at.run()
        problems += _problems(at, case)
        if not at.error and not at.warning:
            problems.append(f"{case}: no message shown")
    assert not problems, "\n".join(problems)


def test_error_details_are_off_outside_development():
    """An unexpected exception shows Streamlit's short notice, not a traceback with server paths: the project's
    .streamlit/config.toml sets client.showErrorDetails = "none"; only ECISEM_DEV=1 ./run.sh turns them on."""
    import tomllib

    root = Path(APP).parent
    config = tomllib.loads((root / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert config["client"]["showErrorDetails"] == "none"
    run_sh = (root / "run.sh").read_text(encoding="utf-8")
    assert 'ECISEM_DEV:-0}" = "1"' in run_sh and "--client.showErrorDetails full" in run_sh
