"""Systematic evaluation: prompt templates × datasets × models, assertions and statistics.

Pure parts (``assertions``, ``stats``, and the leaf modules :mod:`playground.templates` and
:mod:`playground.datasets` it builds on) do no I/O; ``batch`` runs the matrix through the
:class:`~playground.runner.Runner` and records it in the store; ``judging`` grades
``llm_judge`` assertions after the answers are in.
"""
