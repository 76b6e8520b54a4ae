"""Compare runs through their saved reports: ``python -m kaayko_exp.compare <run dirs, sweep dirs or globs>``."""
