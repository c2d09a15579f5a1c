"""History: past comparisons (coming soon, on top of the history store)."""

import streamlit as st

st.title("History")
st.info("Coming soon: browse, search and reopen past comparisons.", icon=":material/history:")
