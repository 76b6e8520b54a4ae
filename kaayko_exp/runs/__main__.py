"""``python -m kaayko_exp.runs``."""

import sys

from .cli import main

sys.exit(main())
