"""`python -m samformer` runs the command line."""

import sys

from samformer.cli import main

sys.exit(main())
