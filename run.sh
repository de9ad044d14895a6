#!/usr/bin/env bash
# The dashboard on the bundled demo: set-up on first use (scripts/setup.sh), then `streamlit run app.py`
# (through ecisem_core.ui.serve).
# Extra arguments go to streamlit, e.g. ./run.sh --server.port 8502; ECISEM_DEV=1 shows tracebacks in the page.
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
# Tracebacks in the page only in development (ECISEM_DEV=1); .streamlit/config.toml hides them otherwise.
dev=()
if [ "${ECISEM_DEV:-0}" = "1" ]; then dev=(--client.showErrorDetails full); fi
# ecisem_core.ui.serve is `streamlit run` with the dashboard's modules imported before the first page load.
exec "$VENV/bin/python" -m ecisem_core.ui.serve app.py --browser.gatherUsageStats false "${dev[@]}" "$@"
