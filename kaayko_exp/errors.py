"""User-facing errors.

A :class:`KaaykoError` is a user mistake: the entry points print its message (one
paragraph: what is wrong and how to fix it) and exit with status 2. Anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Any, Callable, Optional

EXIT_USER_ERROR = 2  # what the entry points exit with on a user mistake


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


def exit_on_user_error(check: Callable[..., Any], *args: Any) -> None:
    """Run ``check(*args)``; a user error is printed as one paragraph and ends the process with its exit status.
    For Hydra callbacks, whose exceptions Hydra would turn into a warning and carry on."""
    try:
        check(*args)
    except KaaykoError as exc:
        report_user_error(exc)
        sys.exit(exc.exit_code)


# ---- Hydra's composition errors as one paragraph with the fix
#
# Hydra reports a mistyped key with OmegaConf internals (``Key 'max_dept' is not in struct ... object_type=dict``),
# an unknown group option with its config search path, a malformed argument with its grammar's parser message.
# :func:`explain` turns each into a sentence that names the argument, suggests the close match (difflib) and says
# how to fix it; :func:`report_config_error` prints it for the entry points (:mod:`kaayko_exp.cli`).

GRAMMAR = "https://hydra.cc/docs/advanced/override_grammar/basic/"


def _program() -> str:
    return Path(sys.argv[0]).name if sys.argv and sys.argv[0].endswith(".py") else "train.py"


def _first_line(text: object) -> str:
    return str(text).strip().splitlines()[0].strip() if str(text).strip() else ""


def _one_of(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


def unknown_key(cause: BaseException) -> Optional[str]:
    """``model.params.max_dept=5``, ``modle=xgboost``: a key the config does not have."""
    full_key, leaf = getattr(cause, "full_key", None), getattr(cause, "key", None)
    if not full_key or leaf is None:
        return None
    full_key, leaf = str(full_key), str(leaf)
    parent = full_key[: -len(leaf)] if full_key.endswith(leaf) else ""
    node = getattr(cause, "parent_node", None)
    siblings = sorted(str(k) for k in node.keys() if str(k) != "hydra") if node is not None else []
    close = difflib.get_close_matches(leaf, siblings, n=3)
    program = _program()
    text = f"'{full_key}' is not a setting {'under ' + repr(parent[:-1]) if parent else 'of ' + program}."
    if close:
        text += f" Did you mean {_one_of([parent + c for c in close])}?"
    elif siblings:
        text += f" The settings there are: {', '.join(siblings)}."
    if getattr(cause, "object_type", None) is dict:  # a free-form mapping such as model.params
        text += (f" Fix its spelling; to pass a parameter the defaults do not list, add it with '+': "
                 f"+{full_key}=<value>.")
    else:
        text += " Fix its spelling (a config group is chosen as group=option, e.g. model=xgboost)."
    return text + f" `python {program} --help` lists the groups and keys."


def missing_option(exc: BaseException) -> Optional[str]:
    """``model=xgbost``: an option the config group does not have."""
    missing, options = getattr(exc, "missing_cfg_file", None), getattr(exc, "options", None)
    group, _, option = str(missing or "").rpartition("/")
    if not group or options is None:
        return None
    options = [str(o) for o in options]
    close = difflib.get_close_matches(option, options, n=1)
    text = f"{group}={option}: the config group '{group}' has no option '{option}'."
    if close:
        text += f" Did you mean {group}={close[0]}?"
    return text + f" Its options: {', '.join(options) or '(none)'}."


def report_config_error(exc: BaseException) -> bool:
    """Print ``exc`` as one paragraph on stderr when it is a Hydra / OmegaConf error; False (nothing printed)
    for anything else. Composition errors get :func:`explain`'s fix; another Hydra error (a sweeper's, say)
    its own message, as Hydra prints it."""
    text = explain(exc)
    if text is not None:
        report_user_error(ConfigError(text))
        return True
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, (HydraException, OmegaConfBaseException)):
        print(" ".join(str(exc).split()), file=sys.stderr, flush=True)
        return True
    return False


def explain(exc: BaseException) -> Optional[str]:
    """One paragraph for an error Hydra raised while composing the config; None for anything else."""
    from hydra.errors import ConfigCompositionException, MissingConfigException, OverrideParseException
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    if isinstance(exc, MissingConfigException):
        text = missing_option(exc)
        if text:
            return text
    if isinstance(exc, OverrideParseException):
        return (f"'{exc.override}' is not a valid command-line override ({_first_line(exc.message)}). Write "
                "key=value or group=option; quote values with spaces, commas, brackets or quotes, e.g. "
                f"'key=\"a, b\"' (the grammar: {GRAMMAR}).")
    cause = exc.__cause__
    if isinstance(exc, ConfigCompositionException) and isinstance(cause, OmegaConfBaseException):
        if isinstance(cause, (ConfigKeyError, ConfigAttributeError)):
            text = unknown_key(cause)
            if text:
                return text
        what = _first_line(exc).rstrip(".").removeprefix("Error merging override ")
        return (f"{what}: {_first_line(getattr(cause, 'msg', cause)).rstrip('.')}. Give the key a value "
                f"of its type; `python {_program()} --cfg job` shows the current values.")
    if isinstance(exc, MissingConfigException):
        return " ".join(str(exc).split("Config search path:")[0].split())
    return None
