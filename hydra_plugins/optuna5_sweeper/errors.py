"""Errors the sweeper raises for user mistakes.

They derive from Hydra's ``CompactHydraException``, so Hydra prints just the message (one paragraph,
no traceback) and exits non-zero; an application's entry point may map that to its own exit status.
"""

from __future__ import annotations

from hydra.errors import CompactHydraException


class SweeperError(CompactHydraException):
    """Base class: a sweep that cannot start or cannot go on because of its configuration."""

    def __str__(self) -> str:  # one paragraph
        return " ".join(str(self.args[0]).split()) if self.args else "sweeper error"


class SearchSpaceError(SweeperError):
    """A search space that cannot be sampled: empty range, zero step, unknown path or group option."""


class SweepConfigError(SweeperError):
    """An invalid sweeper setting (sampler, pruner, direction, storage, custom_search_space ...)."""


class SweepFailedError(SweeperError):
    """Too many trials failed; the message carries the first failure."""
