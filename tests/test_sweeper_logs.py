"""A sweep's log reads as one log: Optuna's lines in the same format as the rest, the joblib launcher's job lines
numbered by job without its per-launch settings line, and no matplotlib layout warning from the sweep's plots."""

import re
import warnings

import optuna
from test_sweeper import run_app

from hydra_plugins.optuna5_sweeper import _outputs


def test_joblib_sweep_numbers_its_jobs_and_optuna_logs_in_hydras_format(tmp_path):
    r = run_app(tmp_path, "hydra/launcher=joblib", "hydra.launcher.n_jobs=1", "hydra.sweeper.n_trials=3",
                "x=interval(0,4)")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Joblib.Parallel(" not in out and "Launching jobs, sweep output dir" not in out
    job_lines = re.findall(r"\t#(\d+) : .*x=", out)
    assert job_lines == ["0", "1", "2"], out
    created = [line for line in out.splitlines() if "A new study created" in line]
    assert len(created) == 1 and created[0].startswith("[") and "[HYDRA]" in created[0], out
    assert not re.search(r"^\[[IWE] \d{4}-", out, re.M), "a line in Optuna's own format:\n" + out


def test_plots_of_a_study_with_many_trials_warn_about_nothing(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()

    def objective(trial):
        value = trial.suggest_float("model.params.learning_rate", 0.0, 1.0)
        for step in range(3):
            trial.report(value + step, step)
        return value

    study.optimize(objective, n_trials=45)  # the intermediate-values legend (one entry a trial) outgrows the figure
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = _outputs.write_plots(tmp_path, study, ["minimize"])
    assert "plots/intermediate_values.png" in written and (tmp_path / "plots" / "intermediate_values.png").stat().st_size
    assert not [str(w.message) for w in caught if "layout" in str(w.message).lower()]
