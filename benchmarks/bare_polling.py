"""The simplest Streamlit page that streams: the baseline ``bench_ui.py`` measures against.

Run starts a background thread that "produces" six streams of 2,000 deltas; a fragment
redraws every column from the text produced so far every 0.1 s. The first delta of each
stream is ``MARK<epoch ms>``: when it was produced, so the benchmark can tell how long it
took to reach the screen. Not part of the app.
"""

from __future__ import annotations

import os
import threading
import time

import streamlit as st

COLUMNS = 6
DELTAS = 2000
DELAY_S = float(os.environ.get("BENCH_DELAY_MS", "3")) / 1000
TTFT_S = [0.30, 0.42, 0.54, 0.66, 0.78, 0.90]


def produce(chunks: list[list[str]], done: list[bool], index: int) -> None:
    time.sleep(TTFT_S[index])
    chunks[index].append(f"MARK{int(time.time() * 1000)} ")
    for i in range(DELTAS - 1):
        time.sleep(DELAY_S)
        chunks[index].append(f"w{i % 10} ")
    done[index] = True


if st.button("Run", type="primary"):
    chunks: list[list[str]] = [[] for _ in range(COLUMNS)]
    done = [False] * COLUMNS
    st.session_state["streams"] = (chunks, done)
    for index in range(COLUMNS):
        threading.Thread(target=produce, args=(chunks, done, index), daemon=True).start()


@st.fragment(run_every=0.1)
def draw() -> None:
    streams = st.session_state.get("streams")
    if streams is None:
        return
    chunks, done = streams
    for index, column in enumerate(st.columns(COLUMNS)):
        with column.container(key=f"column-{index}"):
            st.markdown("Done" if done[index] else "Streaming")
            with st.container(key=f"answer-{index}"):
                st.markdown("".join(chunks[index]) or "…")


draw()
