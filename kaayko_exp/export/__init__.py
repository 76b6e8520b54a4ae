"""A saved run in other tools' model formats: ``python -m kaayko_exp.export mlflow <run> <dest>``
(:mod:`kaayko_exp.export.mlflow_model`). Exports wrap the serving Predictor, so every format scores
exactly as ``predict.py`` does."""
