"""`python -m samformer` runs the command line."""

from samformer.cli import run

run()
