#!/usr/bin/env bash
# The dashboard on the bundled demo: set-up on first use (scripts/setup.sh), then `streamlit run app.py`.
# Extra arguments go to streamlit, e.g. ./run.sh --server.port 8502
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
exec "$VENV/bin/python" -m streamlit run app.py --browser.gatherUsageStats false "$@"
