"""kaayko-exp: Hydra-configured experiments that turn hourly lake weather into a paddle score.

``import kaayko_exp`` stays light: :class:`Predictor` (``from kaayko_exp import
Predictor``) is imported on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Predictor", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Predictor":
        from kaayko_exp.serving.predictor import Predictor

        return Predictor
    raise AttributeError(f"module 'kaayko_exp' has no attribute {name!r}")
