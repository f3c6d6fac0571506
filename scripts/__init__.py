"""The command-line entry points (run as `python scripts/NAME.py`). A package only so
that import-linter can check that nothing below imports them."""
