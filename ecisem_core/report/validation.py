"""The files ``ecisem validate`` writes: tables, the summary, the calibrated settings and the agreement figure as
one self-contained HTML file."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ecisem_core.downstream.calibrate import save_calibration
from ecisem_core.downstream.validate import ValidationResult
from ecisem_core.report.figures import agreement_figure

OUTPUT_FILES: tuple[str, ...] = ("validation.csv", "agreement.csv", "scores.csv", "agreement.html", "summary.json")
"""Files :func:`write_outputs` always writes; ``calibrated_config.json`` too when calibration ran."""
CALIBRATION_FILE: str = "calibrated_config.json"


def write_outputs(result: ValidationResult, out_dir: str | Path) -> dict[str, Path]:
    """Write validation.csv, agreement.csv, scores.csv (per-source scores), agreement.html (plotly, self-contained),
    summary.json and, after calibration, calibrated_config.json (loadable by ``ScoreConfig.load``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in OUTPUT_FILES}
    result.table.to_csv(paths["validation.csv"], index=False)
    result.agreement.to_csv(paths["agreement.csv"], index=False)
    pd.DataFrame(result.scores).rename_axis("source").to_csv(paths["scores.csv"])
    fig = agreement_figure(result.table, result.agreement, result.scores)
    fig.write_html(paths["agreement.html"], include_plotlyjs=True, full_html=True)
    if result.calibration is not None and result.calibration.ok:
        paths[CALIBRATION_FILE] = out / CALIBRATION_FILE
        save_calibration(result.calibration, paths[CALIBRATION_FILE])
    paths["summary.json"].write_text(json.dumps(result.summary, indent=2, ensure_ascii=False) + "\n",
                                     encoding="utf-8")
    return paths
