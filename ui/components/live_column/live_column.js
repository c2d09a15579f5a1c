// One live answer column: follows its run's Server-Sent Events and appends the text as it
// arrives. Model output is untrusted: it only ever becomes a Text node (never HTML), so an
// answer full of <script> or <img onerror> stays inert. Streamlit redraws the column as
// markdown once the whole run is done (this component asks for that rerun).
//
// The component is the whole column while it streams (model name, status, metrics, Stop,
// answer): each element Streamlit draws is sent again on every page run, and a click while
// six columns stream is a page run. For the same reason this code is not in the element:
// the element carries loader.js, which imports this module from the app once per page.
//
// All columns of a run share one EventSource (browsers allow ~6 connections per host), kept
// on globalThis so a column mounted again after a rerun picks up the text received so far.

const shared = (globalThis.__playgroundLive ??= { runs: new Map() });
const RETRY_MS = 1000;
const REDRAW_MS = 50;

// Every column of the page redraws in the same frame, at most REDRAW_MS apart: each frame
// lays out and paints the page again, so six columns each on their own timer made up to
// six times the frames (and the page slow to answer a click while they stream).
const frames = (shared.frames ??= { dirty: new Set(), queued: false, lastDraw: 0 });
// A part of an answer this long moves its lines but the last into a block of their own.
const PART_CHARS = 800;

function drawFrame() {
  frames.queued = false;
  frames.lastDraw = performance.now();
  const views = [...frames.dirty];
  frames.dirty.clear();
  // Measure every column first, then change them: a measure after a change would lay out
  // the page again, once per column.
  const splits = views.map((view) => view.measure());
  views.forEach((view, i) => view.flush(splits[i]));
}

// A character a line cannot start with (the second half of a surrogate pair, a combining
// mark, an emoji modifier, a joiner or variation selector): no split there, whatever the
// measures say.
const CONTINUES = /^[\p{M}\p{Emoji_Modifier}\u200c\u200d\ufe0e\ufe0f\udc00-\udfff]/u;

// Where the last line of the Text node `node` starts as laid out now: its offset, or 0
// (no split) when that cannot be told (one line, not rendered, a rect missing).
function lastLineStart(node) {
  const text = node.data;
  if (text.length < 2) return 0;
  const range = document.createRange();
  const rect = (offset) => {
    range.setStart(node, offset);
    range.setEnd(node, offset + 1);
    const rects = range.getClientRects();
    return rects.length ? rects[0] : null;
  };
  // The text's last character that has a box (a final newline may have none).
  let end = text.length - 1;
  if (text[end] === "\n") end -= 1;
  const last = end > 0 ? rect(end) : null;
  if (!last || last.height === 0) return 0;
  const onLastLine = (offset) => {
    const box = rect(offset);
    return box !== null && (box.top + box.bottom) / 2 > last.top;
  };
  let low = 0;
  let high = end;
  while (low < high) {
    const middle = (low + high) >> 1;
    if (onLastLine(middle)) high = middle;
    else low = middle + 1;
  }
  // A line starts after a newline or a wrap: check both sides of the split, so an odd
  // measure (a box missing mid-text) never moves text to the wrong line.
  if (low === 0 || CONTINUES.test(text.slice(low, low + 2))) return 0;
  if (!onLastLine(low)) return 0;
  if (text[low - 1] !== "\n" && (rect(low - 1) === null || onLastLine(low - 1))) return 0;
  return low;
}

function queueFrame(view) {
  frames.dirty.add(view);
  if (frames.queued) return;
  frames.queued = true;
  const wait = Math.max(0, REDRAW_MS - (performance.now() - frames.lastDraw));
  setTimeout(() => requestAnimationFrame(drawFrame), wait);
}

function columnOf(run, index) {
  let column = run.columns.get(index);
  if (!column) {
    column = { text: "", status: "pending", label: "Waiting", colour: "gray", ttft: null,
               metrics: null, final: false, startedAt: performance.now() };
    run.columns.set(index, column);
  }
  return column;
}

function apply(run, event) {
  if (event.k === "done") {
    run.done = true;
    run.source.close();
    return;
  }
  const column = columnOf(run, event.i);
  if (event.k === "delta") {
    column.text += event.t;
  } else if (event.k === "ttft") {
    column.ttft = event.ms;
  } else {
    column.status = event.status;
    column.label = event.label;
    column.colour = event.colour;
    if (event.metrics) column.metrics = event.metrics;
    if (event.k === "finished") column.final = true;
  }
}

function follow(url) {
  let run = shared.runs.get(url);
  if (run) return run;
  run = { url, columns: new Map(), views: new Set(), done: false, failed: false, seen: false,
          askedRerun: false, lastId: 0, source: null };
  shared.runs.set(url, run);
  connect(run);
  return run;
}

// Opens the stream from the last event this page has (a reconnect sends it in the URL,
// so a proxy that drops the Last-Event-ID header cannot cause doubled text); a message
// already applied is skipped all the same. A message is a list of events; its id is the
// last one's.
function connect(run) {
  const source = new EventSource(run.lastId ? `${run.url}&last_event_id=${run.lastId}` : run.url);
  run.source = source;
  source.onmessage = (message) => {
    const id = Number(message.lastEventId);
    if (id <= run.lastId) return;
    run.lastId = id;
    run.seen = true;
    for (const event of JSON.parse(message.data)) {
      apply(run, event);
      for (const view of run.views) view.update(event);
    }
  };
  source.onerror = () => {
    source.close();
    if (run.done) return;
    if (run.seen) {
      setTimeout(() => connect(run), RETRY_MS); // a dropped stream: resume where it stopped
      return;
    }
    // Not one event ever came through (a proxy blocks or buffers the route): give up and
    // let the page poll, as it did before this route existed.
    run.failed = true;
    shared.runs.delete(run.url);
    for (const view of run.views) view.update({ k: "failed" });
  };
}

function element(tag, className, parent) {
  const node = document.createElement(tag);
  node.className = className;
  parent.appendChild(node);
  return node;
}

function seconds(ms) {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  // Run again (Streamlit does when the data changes): start from a clean element.
  parentElement.querySelector(".live-column")?.remove();
  const root = element("div", "live-column", parentElement);
  const statusLine = element("div", "live-status", root);
  element("strong", "live-name", statusLine).textContent = data.name ?? "";
  const badge = element("span", "live-badge", statusLine);
  element("div", "live-label", root).textContent = data.label ?? "";
  const index = data.index;
  const run = follow(data.url);
  const column = columnOf(run, index);
  // A real button (keyboard and screen readers reach it); the page's callback stops the
  // model, and the column keeps the text received so far.
  let stopButton = null;
  if (data.stop) {
    stopButton = element("button", "live-stop", root);
    stopButton.type = "button";
    element("span", "live-stop-icon", stopButton).setAttribute("aria-hidden", "true");
    stopButton.append("Stop");
    stopButton.addEventListener("click", () => {
      stopButton.disabled = true;
      setTriggerValue("stop", true);
    });
  }
  const metricsLine = element("div", "live-metrics", root);
  const answer = element("div", "live-answer", root);

  // The answer is Text nodes only: new text is appended to the last one, never parsed.
  // A long answer is cut into parts (blocks) at the start of a line, so appending lays out
  // and paints only the last part, not the whole answer again; it looks the same.
  let tail = null;
  function showText(text) {
    answer.textContent = "";
    tail = document.createTextNode(text);
    element("div", "live-part", answer).appendChild(tail);
  }
  if (column.text) showText(column.text);
  else answer.textContent = data.waiting;
  // Copying live text gives the text itself: the parts' blocks would otherwise add a line
  // break where the text only wraps.
  answer.addEventListener("copy", (event) => {
    const selection = document.getSelection();
    if (!selection || selection.rangeCount !== 1) return;
    const range = selection.getRangeAt(0);
    if (!answer.contains(range.commonAncestorContainer)) return;
    event.clipboardData.setData("text/plain", range.toString());
    event.preventDefault();
  });

  function drawStatus() {
    // The dot marks the live badge (the final redraw brings Streamlit's own badge).
    badge.textContent = `● ${column.label}`;
    badge.dataset.colour = column.colour;
    root.dataset.status = column.status;
    if (stopButton !== null) stopButton.hidden = column.final;
    const parts = [];
    if (column.metrics) {
      for (const [name, value] of column.metrics) parts.push(`${name} ${value}`);
    } else {
      if (column.ttft !== null) parts.push(`TTFT ${seconds(column.ttft)}`);
      if (column.text) parts.push(`${column.text.length.toLocaleString()} chars`);
      if (data.price !== null && data.price !== undefined) parts.push(`Cost ≈ ${data.price} tokens`);
    }
    metricsLine.textContent = parts.join(" · ");
  }

  // Text that arrived since the last redraw is appended in the next shared frame (the
  // first text at once): a long answer is laid out again on every change.
  let pending = "";

  function askRerun(name) {
    if (run.askedRerun) return;
    run.askedRerun = true; // one rerun per run, whichever of its columns sees the end first
    setTriggerValue(name, true);
  }

  const view = {
    measure() {
      return tail !== null && tail.length > PART_CHARS ? lastLineStart(tail) : 0;
    },
    flush(split) {
      if (split > 0) {
        // The lines above the last one stay where they are, in a part of their own.
        const rest = tail.splitText(split);
        element("div", "live-part", answer).appendChild(rest);
        tail = rest;
      }
      if (pending) {
        tail.appendData(pending);
        pending = "";
      }
      drawStatus();
    },
    update(event) {
      if (event.k === "failed") {
        askRerun("fallback");
        return;
      }
      if (event.k === "done") {
        queueFrame(view);
        askRerun("done");
        return;
      }
      if (event.i !== index) return;
      if (event.k === "delta") {
        if (tail === null) {
          showText(event.t); // the first text replaces the waiting note at once
        } else {
          pending += event.t;
        }
      }
      queueFrame(view);
    },
  };
  run.views.add(view);
  drawStatus();
  if (run.done) askRerun("done");
  return () => {
    run.views.delete(view);
    frames.dirty.delete(view);
    root.remove();
  };
}
