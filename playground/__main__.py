"""``python -m playground`` runs the CLI."""

import logging
import os
import signal
import sys
import threading

from playground.cli.main import main

# Piping into `head` should end quietly, as Unix tools do, not with a BrokenPipeError.
if hasattr(signal, "SIGPIPE"):
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
code = main()
logging.shutdown()
sys.stdout.flush()
sys.stderr.flush()
others = [t for t in threading.enumerate() if t is not threading.main_thread()]
if sys.argv[1:2] == ["eval"] and all(t.daemon for t in others):
    # An eval has stored every answer and closed the database when main returns. Tearing
    # down ~800 modules and ~100k objects after that only delays the exit a CI job waits
    # for (~0.2 s of CPU). Other commands exit normally: their clean-up at exit (temporary
    # files, connections) is not worth skipping.
    os._exit(code)
sys.exit(code)
