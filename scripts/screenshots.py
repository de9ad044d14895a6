"""Screenshots of every page of the real app on the demo, at 1440 and 1024 px wide:
``assets/screenshots/<page>-<width>.png`` (each kept under 300 KB), plus the README's ``leaderboard.png`` and
``geometry.png`` (the 1440 px ones).

    python scripts/screenshots.py [--out assets/screenshots] [--widths 1440 1024] [--pages leaderboard why …]

Starts the app server (``python -m ecisem_core.ui.serve app.py``) on a free port with the demo's shipped vectors
seeded into a temporary cache, waits for the leaderboard's background results (CI, P(A > B), stability,
contributions), then opens each page (Geometry coloured by source with one query's links drawn). Needs
/usr/bin/chromium. Look at every image before calling a view done.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from browser_support import close_page_not_found, launch_chromium, streamlit_server, wait_idle  # noqa: E402  (tests/browser_support.py)
MAX_BYTES = 300_000


def _shrink(path: Path) -> None:
    """Re-encode with a 256-colour palette when the PNG is over the size limit."""
    if path.stat().st_size <= MAX_BYTES:
        return
    from PIL import Image

    img = Image.open(path).convert("RGB")
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)


PAGES: dict[str, tuple[str, str | None, int]] = {
    "leaderboard": ("/", "Why each score: term contributions", 2150),
    "why": ("/why?view=why", "Δ log ECI_sem", 1500),
    "geometry": ("/geometry?col=source&q=astronomy-01&view=geometry", "unique texts laid out by UMAP", 1150),
    "explorer": ("/explorer?view=explorer", None, 1300),
    "compare": ("/compare?view=compare&ca=paper&cb=weak-start", "Which terms moved each score", 1350),
    "false-negatives": ("/false-negatives?view=false-negatives", None, 1500),
    "annotate": ("/annotate?view=annotate&batch=1", None, 1100),
    "annotator": ("/annotate?batch=1&annotator=alice&role=annotator", None, 900),
    "validate": ("/validate?view=validate", None, 1500),
}
"""Page → (path and query, a text that shows the page is complete or None for "script idle", viewport height).
``annotator`` is the Annotate page as an annotator's personal link shows it."""


def _seed_store(db: Path) -> None:
    """A small batch of demo triplets (planted false negatives and others) dealt to two annotators, with
    guidelines and a few verdicts, so the Annotate pages show what they are for."""
    import pandas as pd

    from ecisem_core.curation.annotations import AnnotationStore
    from ecisem_core.curation.assignment import assign_items
    from ecisem_core.io.load import read_triplets
    from ecisem_core.ui.data import demo_path

    t = read_triplets([demo_path()]).triplets.drop_duplicates(["query_id", "negative_id"])
    rows = pd.concat([t[t["fn_label"] == 1.0].head(6), t[t["fn_label"] == 0.0].head(6)]).sample(frac=1.0,
                                                                                             random_state=0)
    store = AnnotationStore(db)
    batch = store.create_batch("demo · review queue · 12 triplets", rows)
    store.set_guidelines(batch, "A candidate negative is a false negative when it answers the query as well as "
                                "the labeled positive does, even in other words. Judge the text alone, not its "
                                "source. Use Unsure when the query is ambiguous.")
    ids = store.items(batch)["id"].tolist()
    store.assign(batch, assign_items(ids, ["alice", "bob"], overlap=0.5))
    truth = dict(zip(zip(rows["query_id"], rows["negative_id"]), rows["fn_label"]))
    for rec in store.items(batch).to_dict("records")[:4]:
        for who in store.assignments(batch).query("item_id == @rec['id']")["annotator"]:
            store.record_verdict(rec["id"], who, "fn" if truth[(rec["query_id"], rec["negative_id"])] else "tn")


def take(out: Path, widths: list[int], pages: list[str]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    from ecisem_core import demo

    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ecisem-shots-"))
    demo.seed_cache(tmp / "cache")
    env = {"ECISEM_CACHE_DIR": str(tmp / "cache"), "ECISEM_DATA_ROOT": str(tmp / "data"),
           "ECISEM_ANNOTATIONS_DB": str(tmp / "annotations.sqlite"), "ECISEM_VIEWS_DB": str(tmp / "views.sqlite")}
    (tmp / "data").mkdir()
    _seed_store(tmp / "annotations.sqlite")
    shots = []
    with streamlit_server(env, tmp / "streamlit.log") as base:
        with sync_playwright() as p:
            b = launch_chromium(p)
            page = b.new_page(viewport={"width": 1440, "height": 2150}, device_scale_factor=1)
            page.goto(base + "/")
            page.locator('[data-testid="eciBoard"] .badge').first.wait_for(timeout=900_000)  # bootstrap done
            page.get_by_text("P(A scores above B)").first.wait_for(timeout=900_000)
            page.get_by_text("Why each score: term contributions").last.wait_for(timeout=900_000)
            for width in widths:
                for name in pages:
                    path, ready, height = PAGES[name]
                    page.set_viewport_size({"width": width, "height": height})
                    page.goto(base + path)
                    close_page_not_found(page)
                    if ready:
                        page.get_by_text(ready).first.wait_for(timeout=900_000)
                    wait_idle(page, 900_000)
                    page.wait_for_timeout(2500)
                    shots.append(out / f"{name}-{width}.png")
                    page.screenshot(path=str(shots[-1]))
                    if width == 1440 and name in ("leaderboard", "geometry"):  # the README's two images
                        shots.append(out / f"{name}.png")
                        shutil.copyfile(shots[-2], shots[-1])
            b.close()
    for s in shots:
        _shrink(s)
    return shots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "screenshots")
    ap.add_argument("--widths", type=int, nargs="+", default=[1440, 1024])
    ap.add_argument("--pages", nargs="+", default=list(PAGES), choices=list(PAGES))
    args = ap.parse_args(argv)
    for path in take(args.out, args.widths, args.pages):
        print(path, f"{path.stat().st_size / 1000:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
