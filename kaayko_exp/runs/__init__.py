"""Run management: ``python -m kaayko_exp.runs list|status|clean|clear-cache|repair``.

* :mod:`.discover` finds run directories and reads their manifests safely,
* :mod:`.show` renders ``list`` lines and the ``status`` text (statuses: running, completed, failed,
  interrupted, pruned — a sweep trial stopped by the sweep's pruner),
* :mod:`.sweeps` reads Optuna sweep directories (``sweep.json``): progress, best value, its test metrics,
* :mod:`.clean` deletes partial checkpoints of old finished runs and dataset cache entries,
* :mod:`.repair` marks stages with missing or altered artifacts as pending so a resume rebuilds them,
* :mod:`.cli` is the argparse front end (user mistakes: one paragraph, exit status 2).
"""

from kaayko_exp.runs.clean import clean_runs, clear_cache
from kaayko_exp.runs.discover import find_runs, parse_age
from kaayko_exp.runs.repair import repair_run
from kaayko_exp.runs.show import list_lines, status_text

__all__ = ["clean_runs", "clear_cache", "find_runs", "list_lines", "parse_age", "repair_run", "status_text"]
