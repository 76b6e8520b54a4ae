"""``python tests/kill_train.py KEY:DONE[@SIGNAL] [train.py arguments]``: run train.py, signal it at a fit step.

Test-only fault injection, kept out of the package: the pipeline's fit callback list gets one more
callback that sends SIGNAL (default SIGKILL) to this process right after step DONE of fit KEY (after
that step's checkpoint, if one was due), then ``train.py`` runs as ``python train.py ...`` would.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    point, *args = sys.argv[1:]
    where, _, sig = point.partition("@")
    key, _, done = where.rpartition(":")
    sys.path.insert(0, str(ROOT))
    from kaayko_exp.models.callbacks import FitCallback
    from kaayko_exp.training import pipeline

    class SignalAt(FitCallback):
        def after_step(self, k, d, total, score=None, save=None):
            if k == key and d == int(done):
                os.kill(os.getpid(), getattr(signal, sig or "SIGKILL"))

    build = pipeline.build_fit_callbacks
    pipeline.build_fit_callbacks = lambda *a, **kw: [*build(*a, **kw), SignalAt()]
    sys.argv = [str(ROOT / "train.py"), *args]
    runpy.run_path(str(ROOT / "train.py"), run_name="__main__")


if __name__ == "__main__":
    main()
