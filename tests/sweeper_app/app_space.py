"""custom_search_space for the test app: per-model parameters once the model group is chosen."""


def space(cfg, trial):
    if trial.params["model"] == "cubic":
        trial.suggest_int("model.depth", 1, 4)
    else:
        trial.suggest_float("model.scale", 0.5, 2.0)
