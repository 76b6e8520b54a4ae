"""``python -m kaayko_exp.compare``: see :mod:`kaayko_exp.compare.cli`."""

from kaayko_exp.compare.cli import main

if __name__ == "__main__":
    main()
