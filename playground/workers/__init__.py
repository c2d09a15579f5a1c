"""Queue workers: batch evaluations run on ``python -m playground worker`` processes.

:mod:`~playground.workers.queue` is the procrastinate queue on the history's PostgreSQL
database (what the app needs to hand a batch over); :mod:`~playground.workers.worker` is
the worker process.
"""
