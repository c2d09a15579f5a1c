"""The command line, ``python -m playground ...``: ``main`` parses and dispatches to the
``eval``, ``worker``, ``keys``, ``doctor`` and ``backup`` subcommands."""
