"""Serving: the Predictor, the one input policy, the safety layer, HTTP and the predict.py CLI."""
