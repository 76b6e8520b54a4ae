"""``python -m kaayko_exp.runs``."""

import sys

from kaayko_exp.runs.cli import main

sys.exit(main())
