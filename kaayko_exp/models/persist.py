"""Safe persistence of scikit-learn estimators with skops (never pickle).

``skops.io.load`` only builds the types it is told to trust. We trust skops' own
defaults plus the short, explicit list below (types our estimators contain that
skops does not trust out of the box); a file naming any other type is refused
before it is deserialised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from kaayko_exp import atomic
from kaayko_exp.errors import RunDirError

#: Types beyond skops' defaults that kaayko's scikit-learn models legitimately contain.
TRUSTED_TYPES: frozenset[str] = frozenset({
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "functools.partial",  # histgb keeps partial(check_array, ...); the wrapped function is vetted separately
    "sklearn.utils.validation.check_array",
    # scikit-learn 1.5-1.6: histgb's category encoder (a ColumnTransformer) keeps its remainder columns in this
    # list subclass (plain data: column indices)
    "sklearn.compose._column_transformer._RemainderColsList",
})

_ZIP_MAGIC = b"PK\x03\x04"


def dump(estimator: Any, path: str | Path) -> Path:
    """Write ``estimator`` to ``path`` with skops, atomically."""
    import skops.io as sio

    data = sio.dumps(estimator)
    return atomic.write_bytes(path, data)


def load(path: str | Path) -> Any:
    """Load a skops file, refusing pickles, non-skops files and any type outside the allow-list."""
    import skops.io as sio

    path = Path(path)
    data = path.read_bytes()
    if not data.startswith(_ZIP_MAGIC):
        looks = "a pickle" if data[:1] == b"\x80" else "something else"
        raise RunDirError(
            f"{path} is not a skops file (it looks like {looks}). "
            "kaayko never loads pickles: they can run arbitrary code. Retrain, or restore the file the run wrote."
        )
    try:
        untrusted = sio.get_untrusted_types(data=data)
    except Exception as exc:  # a damaged zip / schema
        raise RunDirError(f"{path} is not a readable skops file ({exc}). Restore it or retrain.") from exc
    refused = sorted(set(untrusted) - TRUSTED_TYPES)
    if refused:
        raise RunDirError(
            f"{path} contains type(s) kaayko does not trust: {', '.join(refused)}. Loading it could run foreign "
            "code, so it is refused. Use a model file written by kaayko-exp, or retrain."
        )
    try:
        return sio.loads(data, trusted=list(untrusted))
    except Exception as exc:
        raise RunDirError(f"{path} could not be loaded by skops ({exc}); it may come from another scikit-learn "
                          "version. Install the versions in model.json, or retrain.") from exc


ESTIMATOR_FILE = "estimator.skops"


class SkopsEstimatorFiles:
    """Model-file methods for a family whose fitted scikit-learn object is ``self.estimator``."""

    estimator: Any

    def _save_files(self, directory: Path) -> list[str]:
        dump(self.estimator, directory / ESTIMATOR_FILE)
        return [ESTIMATOR_FILE]

    def _restore(self, directory: Path, meta: Mapping[str, Any]) -> None:
        self.estimator = load(directory / ESTIMATOR_FILE)
