"""Elumenta prompt playground core: providers, runner, history store, analytics.

This package never imports Streamlit; the app in ``app.py``/``pages/`` and the CLI
(``python -m playground``) are thin layers over it.
"""

__version__ = "0.1.0"
