"""Streamlit building blocks shared by several pages (drawing only; logic is in playground/)."""
