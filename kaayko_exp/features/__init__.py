"""Feature sets and the FeatureSpec (spec.py) and train/validation/test splits (splits.py)."""
