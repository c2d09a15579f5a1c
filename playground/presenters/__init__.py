"""What the pages show, computed without Streamlit: tables, labels, charts, live events.

Presenters sit above the application layer (they may call it) and below ``ui``/``pages``,
which draw what they return. See docs/architecture.md."""
