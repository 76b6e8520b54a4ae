"""Evaluation: metrics against the label, report.json/report.md, plots."""
