"""One short script per screen (listed in app.py).

A package only so the import contract in pyproject.toml can check its imports.
"""
