"""Downstream work around the score: mining candidate negative sources, fine-tuning, evaluation, agreement and
calibration (see docs/ARCHITECTURE.md)."""
