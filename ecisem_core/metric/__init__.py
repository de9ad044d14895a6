"""The metric: per-triplet terms, ECI_sem, classic ECI, Shapley contributions, uncertainty (docs/METRIC.md).

Pure numpy functions over arrays; imports nothing else from the project but ``config`` and ``errors``."""
