"""Costs: billing tokens spent over time (coming soon, on top of the history store)."""

import streamlit as st

st.title("Costs")
st.info(
    "Coming soon: billing tokens spent per day, per model and per tag.",
    icon=":material/payments:",
)
