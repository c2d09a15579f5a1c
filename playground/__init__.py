"""Elumenta prompt playground core: providers, runner, history store, evaluation, services.

This package never imports Streamlit; the app in ``app.py``/``pages/``/``ui/`` and the CLI
(``python -m playground``) are thin layers over it. The layers and what each may import:
docs/architecture.md.
"""

__version__ = "0.1.0"
