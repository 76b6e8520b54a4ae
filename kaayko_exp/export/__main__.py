"""``python -m kaayko_exp.export``."""

import sys

from kaayko_exp.export.cli import main

sys.exit(main())
