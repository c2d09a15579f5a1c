"""``python -m playground`` runs the CLI."""

import gc
import logging
import os
import signal
import sys
import threading

# The CLI's start-up is mostly imports (~800 modules, ~90k objects that live as long as the
# process). The collector would walk them again and again while they load (~10 % of the
# import time), and then in every full collection of a long eval: it is off while they
# load, then they are moved out of its sight. Not collected first: that takes ~60 ms and
# finds under 1 % of them to be garbage.
gc.disable()
from playground.cli.main import main, reader_gone  # noqa: E402

gc.freeze()
gc.enable()

# SIGPIPE keeps Python's handling (an exception). Set to the default action, as Unix tools
# have it, it would also kill an eval outright, mid-run and without a word, on a write to a
# network connection the server had closed.
try:
    code = main()
    sys.stdout.flush()
except BrokenPipeError:
    if not reader_gone(sys.stdout):
        raise
    # Piping into `head` ends quietly, with the status a tool stopped by SIGPIPE has; the
    # output goes nowhere from here, so the flush at exit cannot fail again.
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    code = 128 + getattr(signal, "SIGPIPE", 13)
logging.shutdown()
sys.stderr.flush()
others = [t for t in threading.enumerate() if t is not threading.main_thread()]
if sys.argv[1:2] == ["eval"] and all(t.daemon for t in others):
    # An eval has stored every answer and closed the database when main returns. Tearing
    # down ~800 modules and ~100k objects after that only delays the exit a CI job waits
    # for (~0.2 s of CPU). Other commands exit normally: their clean-up at exit (temporary
    # files, connections) is not worth skipping.
    os._exit(code)
sys.exit(code)
