"""Everything that draws: plotly figures and the self-contained HTML report (the only package importing plotly)."""
