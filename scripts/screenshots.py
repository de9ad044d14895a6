"""Take the README screenshots from the real app on the demo: ``assets/screenshots/leaderboard.png`` and
``assets/screenshots/geometry.png`` (each kept under 300 KB).

    python scripts/screenshots.py [--out assets/screenshots]

Starts ``streamlit run app.py`` on a free port with the demo's shipped vectors seeded into a temporary cache,
waits for the leaderboard's background results (CI, P(A > B), stability, contributions), then opens Geometry
coloured by source with one query's links drawn. Needs /usr/bin/chromium.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import launch_chromium, streamlit_server  # noqa: E402  (tests/browser_support.py)
MAX_BYTES = 300_000


def _shrink(path: Path) -> None:
    """Re-encode with a 256-colour palette when the PNG is over the size limit."""
    if path.stat().st_size <= MAX_BYTES:
        return
    from PIL import Image

    img = Image.open(path).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


def take(out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from ecisem_core import demo

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ecisem-shots-"))
    demo.seed_cache(tmp / "cache")
    env = {"ECISEM_CACHE_DIR": str(tmp / "cache")}
    shots = []
    with streamlit_server(env, tmp / "streamlit.log") as base:
        with sync_playwright() as p:
            b = launch_chromium(p)
            page = b.new_page(viewport={"width": 1440, "height": 2150}, device_scale_factor=1)
            page.goto(base + "/")
            page.locator('[data-testid="eciBoard"] .badge').first.wait_for(timeout=900_000)  # bootstrap done
            page.get_by_text("P(A scores above B)").first.wait_for(timeout=900_000)
            page.get_by_text("Why each score: term contributions").last.wait_for(timeout=900_000)
            page.wait_for_timeout(1500)
            shots.append(out / "leaderboard.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            qid = "astronomy-01"
            page.set_viewport_size({"width": 1440, "height": 1150})
            page.goto(f"{base}/geometry?col=source&q={qid}&view=geometry")
            page.get_by_text("unique texts laid out by UMAP").wait_for(timeout=900_000)
            page.wait_for_timeout(2500)
            shots.append(out / "geometry.png")
            page.screenshot(path=str(shots[-1]), full_page=True)
            b.close()
    for s in shots:
        _shrink(s)
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshots")
    args = ap.parse_args(argv)
    for path in take(args.out):
        print(path, f"{path.stat().st_size / 1000:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
