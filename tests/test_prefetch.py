"""A plain run imports its fit's and report's libraries on a background thread (kaayko_exp.training.prefetch)."""

from __future__ import annotations

import sys

from omegaconf import OmegaConf

from kaayko_exp.training.prefetch import modules_for, prefetch


def test_the_run_prefetches_what_its_fit_and_report_import():
    xgb = OmegaConf.create({"model": {"name": "xgboost"}, "plots": True})
    assert modules_for(xgb) == ["xgboost", "matplotlib.figure", "matplotlib.backends.backend_agg"]
    assert modules_for(OmegaConf.create({"model": {"name": "histgb"}, "plots": False})) == []


def test_a_module_that_fails_to_import_is_left_to_the_stage_that_needs_it():
    name = "kaayko_exp_no_such_module"
    thread = prefetch([name, "wave"])
    thread.join(timeout=60)
    assert not thread.is_alive() and thread.daemon
    assert "wave" in sys.modules and name not in sys.modules
