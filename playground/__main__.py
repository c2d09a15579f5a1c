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
if all(t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
    # A command has committed and closed what it wrote when main returns (an eval: every
    # answer stored, the database closed). Tearing down ~800 modules and ~100k objects
    # after that only delays the exit a CI job waits for (~0.2 s of CPU).
    os._exit(code)
sys.exit(code)
