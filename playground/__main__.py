"""``python -m playground`` runs the CLI."""

import signal
import sys

from playground.cli.main import main

# Piping into `head` should end quietly, as Unix tools do, not with a BrokenPipeError.
if hasattr(signal, "SIGPIPE"):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
sys.exit(main())
