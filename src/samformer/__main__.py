"""`python -m samformer` runs the command line."""

from samformer.cli.main import run

run()
