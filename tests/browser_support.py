"""Helpers for the real-browser tests: the app server (``python -m ecisem_core.ui.serve app.py``) on a free port,
Debian's Chromium through Playwright, and waiting for a Streamlit page to settle. Plain functions (not fixtures), so
any test module can build its own fixtures from them."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def streamlit_server(env: Mapping[str, str], log: Path, app: Path = ROOT / "app.py") -> Iterator[str]:
    """``streamlit run app.py`` (through ``ecisem_core.ui.serve``, as ``./run.sh`` starts it) on a free local port
    with ``env`` added to the environment; yields its URL once ``/_stcore/health`` answers; stops the server (its
    own process group) afterwards. Output goes to ``log``."""
    port = free_port()
    cmd = [sys.executable, "-m", "ecisem_core.ui.serve", str(app), "--server.port", str(port), "--server.address",
           "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **env}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=str(app.parent), env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"streamlit did not start in {START_TIMEOUT_S:.0f} s:\n"
                                   f"{log.read_text(errors='replace')}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=15)


def launch_chromium(playwright):
    """Debian's Chromium (``/usr/bin/chromium``), headless, no network side traffic."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def wait_idle(page, timeout_ms: int = 120_000) -> None:
    """Wait until the Streamlit app has rendered and its script is not running (``data-test-script-state`` of
    ``stApp``). After a click, wait for what the click should show as well: the rerun may not have started yet."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=timeout_ms)


def close_page_not_found(page) -> bool:
    """Close Streamlit's "Page not found" dialog if it is open; returns whether it was (the tests assert it was
    not: with a ``pages/`` folder beside ``app.py`` — the project's pages live in ``views/`` — Streamlit's first run
    on a fresh server took its legacy pages-folder path and showed this dialog over a share link to a page)."""
    dialog = page.get_by_role("dialog").filter(has_text="Page not found")
    if dialog.count() == 0:
        return False
    dialog.get_by_role("button", name="Close").click()
    dialog.wait_for(state="detached")
    return True
