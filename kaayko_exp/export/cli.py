"""``python -m kaayko_exp.export mlflow <run> <dest>``: a saved run as a model of another tool.

User mistakes (not a run, an unfinished or damaged run, an existing destination, MLflow not installed)
print one paragraph and exit with status 2, having written nothing.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

from kaayko_exp.errors import KaaykoError, report_user_error

EPILOG = """examples:
  python -m kaayko_exp.export mlflow outputs/2026-12-02/10-00-00 outputs/models/paddle
  mlflow models serve -m outputs/models/paddle --env-manager local --port 5001
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kaayko_exp.export", description=__doc__.split("\n")[0],
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="format", required=True, metavar="FORMAT")
    mlflow = sub.add_parser("mlflow", help="an MLflow pyfunc model (mlflow.pyfunc.load_model, mlflow models serve)",
                            description="Write the run as an MLflow pyfunc model in the new folder DEST.")
    mlflow.add_argument("run", help="the run directory (its export stage must be done)")
    mlflow.add_argument("dest", help="the model folder to create (must not exist)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s",
                        stream=sys.stderr)
    try:
        from kaayko_exp.export.mlflow_model import save_model
        from kaayko_exp.runs.rundir import shown

        dest = save_model(args.run, args.dest)
    except KaaykoError as exc:
        report_user_error(exc)
        return exc.exit_code
    print(f"Wrote the MLflow model {shown(dest)} (mlflow.pyfunc.load_model('{shown(dest)}'); "
          f"mlflow models serve -m {shown(dest)} --env-manager local)")
    return 0
