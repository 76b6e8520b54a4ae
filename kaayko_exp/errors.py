"""User-facing errors.

A :class:`KaaykoError` is a user mistake: the entry points print its message (one
paragraph: what is wrong and how to fix it) and exit with status 2. Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Optional


class KaaykoError(Exception):
    """Base class for every error caused by user input."""

    exit_code = 2
    kind = "error"

    def __str__(self) -> str:  # one paragraph, no trailing whitespace
        return " ".join(str(self.args[0]).split()) if self.args else self.kind


class ConfigError(KaaykoError):
    """An invalid configuration value or combination."""

    kind = "config error"


class DataError(KaaykoError):
    """A data file or directory that cannot be used as the Kaayko table."""

    kind = "data error"


class RunDirError(KaaykoError):
    """A run directory that is missing, damaged, owned by another process or incompatible."""

    kind = "run directory error"


class PredictionInputError(KaaykoError):
    """A prediction request that cannot be scored."""

    kind = "prediction input error"


def report_user_error(exc: KaaykoError, note: Optional[str] = None) -> None:
    """Print a user error as the entry points do: one paragraph on stderr (the caller then exits 2)."""
    print(f"kaayko-exp {exc.kind}: {exc}" + (f" {note}" if note else ""), file=sys.stderr, flush=True)
