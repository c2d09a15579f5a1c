"""Systematic evaluation: prompt templates × datasets × models, assertions and statistics.

Pure parts (``templates``, ``datasets``, ``assertions``, ``stats``) do no I/O; ``batch``
runs the matrix through the :class:`~playground.runner.Runner` and records it in the store.
"""
