"""Subcommands of the `samformer` command line, one module each."""
