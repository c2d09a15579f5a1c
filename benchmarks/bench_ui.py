"""UI benchmark (issues 4 and 14): how fast streamed text reaches the browser, how often
columns redraw, and how quickly the page answers clicks while six models stream.

Three paths are measured in the same run (``--paths``), each on its own app process:
``bare`` (``benchmarks/bare_polling.py``: the simplest Streamlit page polling a background
thread with ``st.fragment(run_every=0.1)``, the baseline), ``polling`` (the app with
``PLAYGROUND_LIVE_ROUTE=false``: live columns redrawn by a polled fragment, the path before
the live route) and ``live`` (the browser follows each run's event stream). The two app
paths run side by side and take turns round by round, so a change in the machine's load
falls on both alike. The machine is shared: compare the paths' ratios within one run.

The fake Elumenta server and ``streamlit run serve.py`` run as separate processes; Chromium
(Debian's, via Playwright) drives the Compare page. Every model streams 2,000 deltas, the
first one carrying a unique marker. A MutationObserver in the page timestamps, with the
browser's clock (epoch milliseconds, the same machine clock the app stamps ``started_at``
with): the click on Run (its input event), the frame in which each marker first shows and
every change of each column's answer text. The first-text figure is split with the
app's own record of each model (``started_at``, measured TTFT) read from its database; the
"Add user turn" click with the browser's clock at the messages on Streamlit's websocket
(request sent, first reply, the reply that drew the new turn).

Usage: ``python benchmarks/bench_ui.py [--rounds 3] [--delay-ms 3] [--screenshots]
[--paths bare,polling,live]``.
``--screenshots`` also refreshes ``docs/screenshot-compare.png`` (after a six-model run)
and ``docs/screenshot-compare-streaming.png`` (mid-run). Prints figures; not a test.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PIL import Image
from playwright.sync_api import Browser, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from benchmarks._common import (
    UNDELIVERED_CLICKS,
    AppInBrowser,
    app_in_browser,
    chromium,
    describe,
    install_probe,
    probe,
)
from playground.catalog import load_catalog
from playground.store import create_store_engine, get_comparison
from tests.e2e.app_driver import column, pick_models
from tests.e2e.app_process import ROOT
from tests.fake_elumenta.process import FakeServerProcess

MODELS = [
    "gpt-5-nano",
    "claude-haiku-4.5",
    "gemini-2.5-flash",
    "deepseek-v3",
    "gpt-5",
    "grok-4-fast",
]
TTFT_MS = [300.0, 420.0, 540.0, 660.0, 780.0, 900.0]
DELTAS = 2000
LAST_DONE = re.compile(r"^(● )?Done$")
DOCS = ROOT / "docs"
MAX_SCREENSHOT_BYTES = 300_000
SCREENSHOT_WIDTH = 1280

# Installed once per page. Times are epoch milliseconds on the browser's clock, which is
# the machine's clock the app's ``started_at`` timestamps use too. A click's time is its
# input event's timeStamp (when the browser received it, before the page handled it).
OBSERVER_JS = """
(columns) => {
  const now = () => performance.timeOrigin + performance.now();
  const bench = {
    columns, last: Array(columns).fill(null),
    reset(markers) {
      this.markers = markers; this.click = null; this.appeared = {}; this.produced = {};
      this.changes = Array.from({length: columns}, () => []);
    },
  };
  bench.reset([]);
  window.__bench = bench;
  document.addEventListener('click', (event) => {
    const button = event.target.closest('button');
    const words = button ? button.innerText.split('\\n').map((w) => w.trim()) : [];
    if (words.includes('Run') && bench.click === null) {
      bench.click = performance.timeOrigin + event.timeStamp;
    }
  }, true);
  new MutationObserver(() => {
    const t = now();
    for (let i = 0; i < columns; i++) {
      // A finished column's answer box, or the live component drawing the column.
      const box = document.querySelector('.st-key-answer-' + i)
        ?? document.querySelector('.st-key-column-' + i + ' .live-column');
      const text = box ? box.textContent : null;
      if (text === bench.last[i]) continue;
      bench.last[i] = text;
      if (bench.click === null) continue;
      bench.changes[i].push(t);
      let marker = bench.markers[i];
      if (marker === '*' && text) {
        // The bare page's marker carries the epoch ms it was produced at.
        const stamped = text.match(/MARK(\\d{13})/);
        if (stamped) { marker = stamped[0]; bench.produced[i] = Number(stamped[1]); }
      }
      if (marker && marker !== '*' && !(i in bench.appeared) && text && text.includes(marker)) {
        bench.appeared[i] = null;
        requestAnimationFrame(() => { bench.appeared[i] = now(); });  // the frame showing it
      }
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}
"""
# Installed before the page loads: the browser's clock at every message the page sends to
# Streamlit's websocket and every one it receives (epoch ms), to split a click's time.
WEBSOCKET_LOG_JS = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  const Socket = window.WebSocket;
  window.__ws = {sent: [], received: []};
  window.WebSocket = class extends Socket {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => window.__ws.received.push(now()));
    }
    send(data) { window.__ws.sent.push(now()); return super.send(data); }
  };
})();
"""
EXPANDER = "document.querySelector('[data-testid=stExpander] summary')"
ADD_TURN = (
    "[...document.querySelectorAll('button')].find(b => b.innerText.includes('Add user turn'))"
)
ADD_TURN_VISIBLE = f"(({ADD_TURN}) || {{offsetHeight: 0}}).offsetHeight > 0"
# The button has not moved since the last poll, and its expander has finished opening.
ADD_TURN_SETTLED = f"""(() => {{
  const button = {ADD_TURN}, details = button.closest('details');
  const top = button.getBoundingClientRect().top, last = window.__addTurnTop;
  window.__addTurnTop = top;
  return top === last && (!details || details.scrollTop === 0);
}})()"""
# The turn boxes: the text areas of the first expander ("Earlier turns").
TURN_BOXES = (
    "document.querySelector('[data-testid=stExpander]').querySelectorAll('textarea').length"
)

SCREENSHOT_ANSWERS = {
    "gpt-5-nano": "Use **WAL**. Readers keep reading while the single writer commits, "
    "so page loads never wait on a save.\n\n- `PRAGMA journal_mode=WAL;` once\n"
    "- keep `synchronous=NORMAL`",
    "claude-haiku-4.5": "**WAL mode** fits a one-writer, many-reader web app:\n\n"
    "1. Readers and the writer no longer block each other.\n"
    "2. Commits are a sequential append, which is fast.\n\n"
    "Checkpoint during quiet periods if the `-wal` file grows.",
    "gemini-2.5-flash": "Switch to write-ahead logging (`journal_mode=WAL`). The default "
    "rollback journal locks readers out during every write; WAL lets them read the last "
    "committed snapshot instead.",
    "deepseek-v3": "### Recommendation\nWAL.\n\n### Why\n- concurrent reads during writes\n"
    "- fewer `fsync` calls per transaction\n\n### Caveat\nAll processes must be on the same "
    "host: WAL needs shared memory.",
    "gpt-5": "Choose **WAL**. With one writing process and many readers it removes "
    "reader/writer blocking, and with `synchronous=NORMAL` it stays durable across app "
    "crashes. Avoid it only on network file systems.",
    "grok-4-fast": "WAL, no contest: readers stop waiting on the writer. Set it once; "
    "it is stored in the database file.",
}


@dataclass
class Round:
    """One six-model run's figures, in milliseconds (rates per second)."""

    first_text: list[float]
    """Marker on screen minus (click + scripted TTFT), per model."""
    to_start: list[float]
    """Click until the runner started the model's task (``started_at``)."""
    http: list[float]
    """The app's measured TTFT minus the scripted one: HTTP and parsing overhead."""
    to_screen: list[float]
    """From the first content in the app to the marker on screen (includes the write of
    the result's first row before the request is sent)."""
    rates: list[float]
    interactions: list[dict[str, float]]


def model_label(slug: str) -> str:
    info = load_catalog().get(slug)
    assert info is not None
    return info.label


def script_round(fake: FakeServerProcess, delay_ms: float) -> list[str]:
    """Script every model: a marker first, then 2,000 small deltas; returns the markers."""
    markers = []
    for slug, ttft in zip(MODELS, TTFT_MS, strict=True):
        marker = f"MARK{uuid.uuid4().hex[:10]}"
        markers.append(marker)
        deltas = [f"{marker} "] + [f"w{i % 10} " for i in range(DELTAS - 1)]
        fake.script(slug, {"deltas": deltas, "ttft_ms": ttft, "delay_ms": delay_ms})
    return markers


# Where an "Add user turn" goes, from the websocket log (see CLICK_PARTS).
SPLIT_CLICK_JS = """
() => {
  const clicked = window.__probe.clicked, shown = clicked + window.__probe.result;
  const sent = window.__ws.sent.find((t) => t >= clicked);
  const replies = window.__ws.received.filter((t) => t >= sent && t <= shown);
  if (sent === undefined || !replies.length) return null;
  return {
    to_send: sent - clicked, to_reply: replies[0] - sent,
    replies: replies[replies.length - 1] - replies[0], messages: replies.length,
    to_screen: shown - replies[replies.length - 1],
  };
}
"""
CLICK_PARTS = {
    "to_send": "click -> rerun request sent",
    "to_reply": "request -> first reply",
    "replies": "first reply -> last reply before the turn showed",
    "to_screen": "that last reply -> the turn on screen",
}


def measure_interactivity(page: Page) -> dict[str, float]:
    """Open the turns expander (drawn by the browser alone), then press "Add user turn"
    (a rerun of the turns' fragment in the Compare editor on the server, not of the whole
    page); with the parts of the latter (:data:`CLICK_PARTS`) and its reply's messages."""
    if page.evaluate(ADD_TURN_VISIBLE):
        page.evaluate(f"{EXPANDER}.click()")
        page.wait_for_function(f"!({ADD_TURN_VISIBLE})")
    expander_ms = probe(page, EXPANDER, ADD_TURN_VISIBLE)
    # The expander opens with an animation: a click on a button still moving under the
    # pointer ends elsewhere than it began, and the browser makes no click of it.
    page.wait_for_function(ADD_TURN_SETTLED, polling=100)
    turns = page.evaluate(TURN_BOXES)
    sent = page.evaluate("window.__ws.sent.length")
    try:
        add_ms = probe(page, ADD_TURN, f"{TURN_BOXES} > {turns}")
    except PlaywrightTimeoutError:
        # A click that added no turn is a finding, not noise: say what the page showed.
        shot = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-ui-lost-click-{uuid.uuid4()}.png"
        page.screenshot(path=str(shot), full_page=True)
        # Whether the click reached the button (the probe's listener saw it) and what is
        # under the button's centre now; "sent" 0 means the page asked the server nothing.
        state = page.evaluate(
            f"(() => {{ const b = {ADD_TURN}; const r = b.getBoundingClientRect();"
            " const under = document.elementFromPoint(r.x + r.width / 2, r.y + r.height / 2);"
            f" return {{turns: {TURN_BOXES}, open: {ADD_TURN_VISIBLE},"
            f" sent: window.__ws.sent.length - {sent}, received: window.__ws.received.length,"
            " clicked: window.__probe?.clicked ?? null, connected: b.isConnected,"
            " under: under ? under.closest('button')?.innerText ?? under.tagName : null}; })()"
        )
        print(f"'Add user turn' added no turn: {state} (before: {turns}); page: {shot}")
        raise
    parts = page.evaluate(SPLIT_CLICK_JS) or {}
    return {"expander": expander_ms, "add_turn": add_ms, "turns": turns, **parts}


def start_run(page: Page) -> None:
    """Press Run once the page is idle (a click during a rerun can be dropped: retry)."""
    # The compare page's own Run button (other primary buttons stay disabled meanwhile).
    button = page.locator('[data-testid="stBaseButton-primary"]:enabled', has_text="Run")
    for _ in range(5):
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()
        button.click()
        try:
            page.wait_for_function("window.__bench.click !== null", timeout=2000)
        except PlaywrightTimeoutError:
            continue
        return
    raise RuntimeError("the Run button did not react")


def run_round(page: Page, fake: FakeServerProcess, store: Engine, delay_ms: float) -> Round:
    markers = script_round(fake, delay_ms)
    page.evaluate("(markers) => window.__bench.reset(markers)", markers)
    start_run(page)
    page.wait_for_function(
        "Object.values(window.__bench.appeared).filter((t) => t !== null).length"
        f" === {len(MODELS)}",
        timeout=30_000,
    )
    interactions: list[dict[str, float]] = []
    # Clicks while the last model streams: its column says Done (a live column's badge
    # "● Done") the moment it finished, so no click lands on the page run that follows.
    last_done = column(page, len(MODELS) - 1).get_by_text(LAST_DONE).first
    while len(interactions) < 6 and not last_done.is_visible():
        interactions.append(measure_interactivity(page))
        page.wait_for_timeout(300)
    for position in range(len(MODELS)):
        # The live column's badge, or the finished page's if its page run came first.
        done = column(page, position).get_by_text(LAST_DONE).first
        expect(done).to_be_visible(timeout=60_000)
    bench = page.evaluate(
        "() => ({click: window.__bench.click, appeared: window.__bench.appeared,"
        " changes: window.__bench.changes})"
    )
    click = bench["click"]
    appeared = [bench["appeared"][str(i)] for i in range(len(MODELS))]
    with Session(store) as session:
        stored = get_comparison(session, int(page.url.split("comparison=")[1]))
    assert stored is not None
    started = [r.started_at.timestamp() * 1000 for r in stored.results]  # type: ignore[union-attr]
    ttft = [r.ttft_ms or 0.0 for r in stored.results]
    rates = []
    for i, changes in enumerate(bench["changes"]):
        streaming = [t for t in changes if t >= appeared[i]]
        seconds = (streaming[-1] - streaming[0]) / 1000 if len(streaming) > 1 else 0
        if seconds > 0.5:
            rates.append((len(streaming) - 1) / seconds)
    return Round(
        first_text=[appeared[i] - (click + TTFT_MS[i]) for i in range(len(MODELS))],
        to_start=[started[i] - click for i in range(len(MODELS))],
        http=[ttft[i] - TTFT_MS[i] for i in range(len(MODELS))],
        to_screen=[appeared[i] - started[i] - ttft[i] for i in range(len(MODELS))],
        rates=rates,
        interactions=interactions,
    )


def run_bare_round(page: Page) -> list[float]:
    """One run of the bare page: each stream's marker on screen minus when it was produced."""
    page.evaluate("(n) => window.__bench.reset(Array(n).fill('*'))", len(MODELS))
    start_run(page)
    page.wait_for_function(
        "Object.values(window.__bench.appeared).filter((t) => t !== null).length"
        f" === {len(MODELS)}",
        timeout=30_000,
    )
    bench = page.evaluate(
        "() => ({appeared: window.__bench.appeared, produced: window.__bench.produced})"
    )
    for position in range(len(MODELS)):
        expect(column(page, position).get_by_text("Done", exact=True)).to_be_visible(timeout=60_000)
    return [bench["appeared"][str(i)] - bench["produced"][str(i)] for i in range(len(MODELS))]


def open_compare(page: Page, url: str) -> None:
    """A new session on the Compare page with the six models picked, observed."""
    page.goto(url)
    expect(page.get_by_role("heading", name="Compare models")).to_be_visible()
    pick_models(page, [model_label(slug) for slug in MODELS])
    page.evaluate(OBSERVER_JS, len(MODELS))
    install_probe(page)


def save_screenshot(page: Page, path: Path) -> int:
    """The editor and the result columns (from the system prompt down), as a palette PNG at
    most :data:`SCREENSHOT_WIDTH` wide; returns its size in bytes."""
    top = page.get_by_text("System prompt", exact=True).bounding_box()
    main = page.get_by_test_id("stMainBlockContainer").bounding_box()
    columns = [column(page, i).bounding_box() for i in range(len(MODELS))]
    assert top is not None and main is not None and all(columns)
    bottom = max(box["y"] + box["height"] for box in columns if box)
    clip = {
        "x": main["x"],
        "y": top["y"] - 16,
        "width": main["width"],
        "height": bottom - top["y"] + 48,
    }
    image = Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("RGB")  # type: ignore[arg-type]
    if image.width > SCREENSHOT_WIDTH:
        height = round(image.height * SCREENSHOT_WIDTH / image.width)
        image = image.resize((SCREENSHOT_WIDTH, height), Image.Resampling.LANCZOS)
    image = image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, optimize=True)
    return path.stat().st_size


def screenshots(page: Page, fake: FakeServerProcess) -> None:
    """A realistic six-model run, shot mid-stream and when done (sidebar folded away)."""
    page.set_viewport_size({"width": 1440, "height": 2400})
    page.get_by_test_id("stSidebar").hover()  # the collapse button shows on hover only
    collapse = page.get_by_test_id("stSidebarCollapseButton").locator("button")
    collapse.click()
    expect(page.get_by_test_id("stSidebar")).to_have_attribute("data-collapsed", "true")
    for slug, ttft in zip(MODELS, [150, 250, 350, 450, 1500, 200], strict=True):
        text = SCREENSHOT_ANSWERS[slug]
        fake.script(slug, {"text": text, "ttft_ms": ttft, "delay_ms": 35, "n_deltas": 60})
    page.get_by_label("System prompt").fill("Answer in under 80 words.")
    page.get_by_label("Prompt", exact=True).fill(
        "Our web app writes to SQLite from one process and reads from many. "
        "Which journal mode should we use, and why?"
    )
    page.evaluate("() => window.__bench.reset([])")
    start_run(page)
    expect(column(page, 3)).to_contain_text("Why")  # every column but GPT-5's is streaming
    streaming = save_screenshot(page, DOCS / "screenshot-compare-streaming.png")
    for position in range(len(MODELS)):
        expect(column(page, position).get_by_text("Done", exact=True)).to_be_visible()
    expect(page.get_by_text("Share link to this comparison")).to_be_visible()
    done = save_screenshot(page, DOCS / "screenshot-compare.png")
    for name, size in (("streaming", streaming), ("after the run", done)):
        verdict = "ok" if size <= MAX_SCREENSHOT_BYTES else "TOO BIG"
        print(f"screenshot ({name}): {size / 1000:.0f} KB ({verdict}, limit 300 KB)")


def report(rounds: list[Round], delay_ms: float) -> None:
    def joined(name: str) -> list[float]:
        return [v for r in rounds for v in getattr(r, name)]

    interactions = [i for r in rounds for i in r.interactions]
    stream_s = (DELTAS - 1) * delay_ms / 1000
    print(
        f"setup: {len(MODELS)} models x {DELTAS} deltas every {delay_ms:g} ms "
        f"(~{stream_s:.0f} s per stream), scripted TTFT {TTFT_MS[0]:.0f}-{TTFT_MS[-1]:.0f} ms, "
        f"{len(rounds)} rounds after a warm-up, {os.cpu_count()} CPUs shared by Chromium, "
        "the app and the fake"
    )
    first_text = joined("first_text")
    print(
        f"(a) first text on screen minus (click + scripted TTFT): {describe(first_text)} "
        f"(n={len(first_text)}; target median <= 250 ms)"
    )
    for label, name in (
        ("click -> model task started (page script run)", "to_start"),
        ("app-measured TTFT - scripted TTFT (HTTP)", "http"),
        ("first content in the app -> on screen", "to_screen"),
    ):
        print(f"    of which {label}: {describe(joined(name))}")
    rates = joined("rates")
    print(
        f"(b) redraws per second per column while streaming: median "
        f"{statistics.median(rates):.1f}, max {max(rates):.1f} "
        f"(n={len(rates)} columns; target <= 20)"
    )
    if interactions:
        toggles = [i["expander"] for i in interactions]
        adds = [i["add_turn"] for i in interactions]
        print(
            f"(c) while streaming, click to visible change: open an expander (browser only) "
            f"{describe(toggles)}; 'Add user turn' (server rerun) {describe(adds)} "
            f"(n={len(adds)}; target <= 300 ms)"
        )
        print(f"    each 'Add user turn', ms: {', '.join(f'{v:.0f}' for v in sorted(adds))}")
        split = [i for i in interactions if "to_send" in i]
        for name, label in CLICK_PARTS.items():
            if split:
                print(f"    of which {label}: {describe([i[name] for i in split])}")
        if split:
            messages = statistics.median(i["messages"] for i in split)
            turns = statistics.median(i["turns"] for i in interactions)
            print(
                f"    messages received until the turn showed: median {messages:.0f} "
                f"(turns already there: median {turns:.0f})"
            )
    if UNDELIVERED_CLICKS:
        print(
            f"clicks pressed again, the browser having made no click of them (the button moved "
            f"under the pointer): {len(UNDELIVERED_CLICKS)}"
        )


def measure_bare(rounds: int, delay_ms: float) -> list[float]:
    """The bare polling page's first text on screen after it was produced, every round."""
    with app_in_browser(script="benchmarks/bare_polling.py", BENCH_DELAY_MS=str(delay_ms)) as bare:
        page = bare.browser.new_page(viewport={"width": 1440, "height": 1100})
        page.goto(bare.app.url)
        expect(page.get_by_role("button", name="Run")).to_be_visible()
        page.evaluate(OBSERVER_JS, len(MODELS))
        run_bare_round(page)  # warm-up
        return [v for _ in range(rounds) for v in run_bare_round(page)]


@dataclass(frozen=True)
class AppPath:
    """The app (with or without the live route) in its browser, on its Compare page."""

    session: AppInBrowser
    page: Page
    store: Engine

    def round(self, delay_ms: float) -> Round:
        """One six-model run and its figures."""
        return run_round(self.page, self.session.fake, self.store, delay_ms)


@contextmanager
def app_path(browser: Browser, *, live: bool) -> Iterator[AppPath]:
    """The app with or without the live route, its Compare page open with six models in
    a browser context of its own."""
    with (
        app_in_browser(browser=browser, PLAYGROUND_LIVE_ROUTE=str(live).lower()) as session,
        ExitStack() as stack,
    ):
        context = browser.new_context(viewport={"width": 1440, "height": 1100})
        stack.callback(context.close)
        context.add_init_script(WEBSOCKET_LOG_JS)
        page = context.new_page()
        open_compare(page, session.app.url)
        page.get_by_label("Prompt", exact=True).fill("Benchmark: stream as fast as you can.")
        store = create_store_engine(session.database_url)
        stack.callback(store.dispose)
        yield AppPath(session, page, store)


def measure_apps(
    paths: list[str], rounds: int, delay_ms: float, *, shots: bool
) -> dict[str, list[Round]]:
    """Rounds of six-model runs on each app path (``polling``, ``live``), the paths
    taking turns round by round after a warm-up round each."""
    with ExitStack() as stack:
        browser = stack.enter_context(chromium())
        apps = {path: stack.enter_context(app_path(browser, live=path == "live")) for path in paths}
        for app in apps.values():
            app.round(delay_ms)  # warm-up: first connections, caches
        measured: dict[str, list[Round]] = {path: [] for path in paths}
        for _ in range(rounds):
            for path, app in apps.items():
                measured[path].append(app.round(delay_ms))
        if shots and "live" in apps:
            session = apps["live"].session
            page = session.browser.new_page(viewport={"width": 1440, "height": 1100})
            open_compare(page, session.app.url)
            screenshots(page, session.fake)
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--delay-ms", type=float, default=3.0)
    parser.add_argument(
        "--screenshots", action="store_true", help="also refresh the docs/ screenshots"
    )
    parser.add_argument(
        "--paths", default="bare,polling,live", help="comma-separated: bare, polling, live"
    )
    args = parser.parse_args()
    medians: dict[str, float] = {}
    clicks: dict[str, float] = {}
    paths = args.paths.split(",")
    if "bare" in paths:
        print("\n== bare")
        bare = measure_bare(args.rounds, args.delay_ms)
        print(f"first text on screen after it was produced: {describe(bare)} (n={len(bare)})")
        medians["bare"] = statistics.median(bare)
    app_paths = [path for path in paths if path != "bare"]
    measured = measure_apps(app_paths, args.rounds, args.delay_ms, shots=args.screenshots)
    for path, rounds in measured.items():
        print(f"\n== {path}")
        report(rounds, args.delay_ms)
        medians[path] = statistics.median(v for r in rounds for v in r.to_screen)
        adds = [i["add_turn"] for r in rounds for i in r.interactions]
        if adds:
            clicks[path] = statistics.median(adds)
    print("\n== in this run (medians; the machine is shared, compare ratios)")
    for path, value in medians.items():
        print(f"first text on screen after the app has it, {path}: {value:.0f} ms")
    for path, value in clicks.items():
        print(f"server-rerun click while six columns stream, {path}: {value:.0f} ms")


if __name__ == "__main__":
    main()
