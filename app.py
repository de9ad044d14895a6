"""ECIsem Explorer — Streamlit entry point: ``streamlit run app.py`` (``./run.sh`` starts it through
``python -m ecisem_core.ui.serve app.py``, which imports the dashboard first).

Pages come from the registry in ``ecisem_core/ui/registry.py`` (a page appears when its file exists in
``views/``); the settings sidebar is drawn here, so it is the same on every page. An annotator link
(``ui/roles.py``) gets the Annotate page alone, without the sidebar.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from ecisem_core.ui.offline import go_offline

go_offline()  # before the dashboard's modules are imported

from ecisem_core.ui import registry, roles, sidebar  # noqa: E402
from ecisem_core.ui.layout import apply_style, flush_marks, mark  # noqa: E402
from ecisem_core.ui.paths import ensure_data_root  # noqa: E402
from ecisem_core.ui.share import PARAMS  # noqa: E402
from ecisem_core.ui.state import K  # noqa: E402

ROOT = Path(__file__).resolve().parent
mark("start")
ensure_data_root()  # data/ exists from the first run on, so "Path" has a place to point at

annotator = roles.is_annotator(st.query_params.to_dict(), st.session_state)
st.set_page_config(page_title="ECIsem Explorer", page_icon=":material/insights:", layout="wide",
                   initial_sidebar_state="collapsed" if annotator else "expanded")
apply_style()

if annotator:  # an annotator link: the Annotate page alone — no menu, no settings sidebar, no researcher view
    spec = registry.page(registry.ANNOTATE)
    annotate = st.Page(str(ROOT / spec.file), title=spec.title, icon=spec.icon, url_path=spec.url_path)

    def to_annotate() -> None:  # the default page (a default page has no path, so /annotate must be another one)
        st.switch_page(annotate, query_params={k: st.query_params.get_all(k) for k in st.query_params})

    st.navigation([st.Page(to_annotate, title=spec.title, url_path="start", default=True), annotate],
                  position="hidden").run()
    st.stop()

specs = registry.available_pages(ROOT)
pages = {spec.url_path: st.Page(str(ROOT / spec.file), title=spec.title, icon=spec.icon, url_path=spec.url_path,
                                default=i == 0)
         for i, spec in enumerate(specs)}
nav = {section: [pages[s.url_path] for s in group] for section, group in registry.sections(specs).items()}
page = st.navigation(nav, position="sidebar", expanded=True)

first_run = not st.session_state.get(K.INITIALISED)
saved_on = sidebar.open_saved_view() if first_run else None  # ?sv=<name>: its parameters replace the link's
view = next((k for k, p in pages.items() if p is page), "")
if first_run and (saved_on is not None or page.url_path == ""):  # a saved view, or a link naming only its view
    wanted = saved_on if saved_on is not None else st.query_params.get(PARAMS["view"])
    if wanted in pages and pages[wanted] is not page:
        st.switch_page(pages[wanted], query_params={k: st.query_params.get_all(k) for k in st.query_params})
resumed = sidebar.resumable(view)  # a rerun of this page on the same data: the page first, the sidebar after it
if resumed is None:
    sidebar.start(view)
mark("sidebar")
try:
    page.run()
finally:
    if resumed is not None:
        sidebar.after_page(view, resumed)
    sidebar.finish(view)
    mark("end")
    flush_marks()
