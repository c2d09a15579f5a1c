"""``python -m playground`` runs the CLI."""

import sys

from playground.cli import main

sys.exit(main())
