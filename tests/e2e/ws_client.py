"""One Streamlit browser session without a browser: the app's own WebSocket protocol.

A test tool for load: a simulated user costs the machine a socket and some protobuf
parsing instead of a Chromium tab, so 20 of them fit next to the app on a 2-core machine.
It speaks the protocol the way Streamlit's frontend does (Streamlit 1.67):

- Connect to ``/_stcore/stream`` with the subprotocol ``streamlit``, an ``Origin`` equal
  to the app's own (any other origin is refused) and whatever headers a reverse proxy would
  add (the hosted app's ``X-Forwarded-Email``). The browser also passes the XSRF token and
  a session id to resume as further subprotocol entries; the server reads them only for
  its own sign-in cookie and for reconnects, so this client sends neither.
- Every script run is asked for with ``BackMsg.rerun_script`` (a ``ClientState``): the
  query string, the page, the value of every widget the user has set (``WidgetStates``),
  and a fragment id for a fragment-only run. A button press is ``trigger_value`` sent with
  one run only.
- The server answers with ``ForwardMsg``s: ``new_session`` opens each run (its
  ``metadata.run`` lists the fragments it reruns: none means a full run), ``delta`` puts an
  element or a block at ``metadata.delta_path``, ``page_info_changed`` carries the new
  query string, ``auto_rerun`` asks the client to rerun a fragment every ``interval``
  seconds (``st.fragment(run_every=…)``; the browser keeps a timer, and so does this), and
  ``script_finished`` closes the run; elements the run did not draw again are then gone.

No message cache is announced, so the server always sends whole messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Block_pb2 import Block
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Origin, Subprotocol

Path = tuple[int, ...]


class ScriptRunError(RuntimeError):
    """A script run the client waited for did not finish normally."""


@dataclass
class Node:
    """What the page shows at one delta path, and the run (and fragment) that drew it."""

    element: Element | None
    block: Block | None
    run_id: str
    fragment_id: str

    @property
    def widget_id(self) -> str:
        """The element's widget id (``$$ID-<hash>-<key or None>``), or ``""``."""
        if self.element is None:
            return ""
        kind = self.element.WhichOneof("type")
        return str(getattr(getattr(self.element, kind), "id", "")) if kind else ""


class StreamlitSession:
    """One user's session on a running app; ``async with`` connects and closes it.

    Read messages with :meth:`receive` (each is applied to :attr:`page` first) or wait for
    a whole run with :meth:`run_script`. Widget values set with :meth:`set_widget` are
    sent with every later run, as the browser does; :meth:`press` sends a button press
    with the next run only.
    """

    def __init__(
        self,
        app_url: str,
        headers: Mapping[str, str] | None = None,
        *,
        timeout_s: float = 60.0,
        watch: re.Pattern[bytes] | None = None,
    ) -> None:
        self.app_url = app_url.rstrip("/")
        self.headers = dict(headers or {})
        self.timeout_s = timeout_s
        self.watch = watch
        self.seen: set[bytes] = set()
        """Every distinct match of ``watch`` in any message received: what the user got."""
        self.page: dict[Path, Node] = {}
        self.query_string = ""
        self.errors: list[str] = []
        """Error callouts, exceptions and compile errors the app showed, each text once."""
        self._page_script_hash = ""
        self._widgets: dict[str, WidgetState] = {}
        self._triggers: list[str] = []
        self._run_id = ""
        self._run_fragments: tuple[str, ...] = ()
        self._auto_reruns: dict[str, tuple[float, asyncio.Task[None]]] = {}
        self._timers: set[asyncio.Task[None]] = set()
        self._socket: ClientConnection | None = None

    async def __aenter__(self) -> Self:
        stream = self.app_url.replace("http", "ws", 1) + "/_stcore/stream"
        self._socket = await connect(
            stream,
            origin=Origin(self.app_url),
            subprotocols=[Subprotocol("streamlit")],
            additional_headers=self.headers,
            max_size=None,
            open_timeout=self.timeout_s,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop_auto_reruns(list(self._auto_reruns))
        for task in list(self._timers):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._socket is not None:
            await self._socket.close()

    # -- what the page shows -------------------------------------------------------------

    def elements(self) -> Iterator[tuple[Path, Element]]:
        """Every element on the page with its delta path, in path order."""
        for path in sorted(self.page):
            element = self.page[path].element
            if element is not None:
                yield path, element

    def widget_id(self, key: str) -> str:
        """The id of the widget created with ``key=key``; ``LookupError`` if none is shown."""
        for node in self.page.values():
            if node.widget_id.endswith(f"-{key}"):
                return node.widget_id
        raise LookupError(f"no widget with key {key!r} on the page")

    def button_id(self, label: str) -> str:
        """The id of the button labelled ``label``; ``LookupError`` if none is shown."""
        for _, element in self.elements():
            if element.WhichOneof("type") == "button" and element.button.label == label:
                return str(element.button.id)
        raise LookupError(f"no button {label!r} on the page")

    def block_id_above(self, path: Path) -> str:
        """The id of the block holding the element at ``path`` (``""`` for unkeyed blocks)."""
        parent = self.page.get(path[:-1])
        return parent.block.id if parent is not None and parent.block is not None else ""

    # -- what the user does --------------------------------------------------------------

    def set_widget(self, widget_id: str, **value: Any) -> None:
        """Give a widget a value for every later run: ``string_value="…"`` for text, a list
        as ``string_array_value`` for a multiselect (its option labels), and so on."""
        state = WidgetState(id=widget_id)
        for field, given in value.items():
            if field.endswith("_array_value"):
                getattr(state, field).data.extend(given)
            else:
                setattr(state, field, given)
        self._widgets[widget_id] = state

    def press(self, button_id: str) -> None:
        """Press a button: it is sent as pressed with the next run only."""
        self._triggers.append(button_id)

    def fragment_of(self, widget_id: str) -> str:
        """The fragment that drew ``widget_id`` (``""`` when the page's full run did)."""
        return next(
            (node.fragment_id for node in self.page.values() if node.widget_id == widget_id), ""
        )

    async def click(self, button_id: str) -> None:
        """Press a button as the browser does: with a run of the fragment that drew it (a
        full run when none did)."""
        self.press(button_id)
        await self.rerun(self.fragment_of(button_id), timer=False)

    async def edit(self, widget_id: str) -> None:
        """Send the values set so far as the browser does once an edit is done (a text box
        losing focus): with a run of the fragment that drew ``widget_id`` (a full run when
        none did). Reads messages until that run has finished."""
        fragment_id = self.fragment_of(widget_id)
        if not fragment_id:
            await self.run_script()
            return
        await self.rerun(fragment_id, timer=False)
        while True:
            message = await self.receive()
            if self.full_run_finished(message) or (
                message.WhichOneof("type") == "script_finished"
                and message.script_finished == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY
                and fragment_id in self._run_fragments
            ):
                return

    async def run_of(self, widget_id: str) -> None:
        """Ask for the run a widget's change asks for in the browser (a component's
        trigger, say): of the fragment that drew it (a full run when none did). Reads
        messages until a full run has finished (a fragment may rerun the page)."""
        await self.rerun(self.fragment_of(widget_id), timer=False)
        await self._until_full_run()

    def component_ids(self, name: str) -> list[str]:
        """The widget ids of the components named ``name`` the page shows."""
        return [
            node.widget_id
            for node in self.page.values()
            if node.element is not None
            and node.element.WhichOneof("type") == "bidi_component"
            and node.element.bidi_component.component_name == name
        ]

    async def rerun(self, fragment_id: str = "", *, timer: bool = True) -> None:
        """Ask for a run (of one fragment, when given: its ``run_every`` timer's, unless
        ``timer`` is false) with the current widget values."""
        message = BackMsg()
        state = message.rerun_script
        state.query_string = self.query_string
        state.page_script_hash = self._page_script_hash
        state.fragment_id = fragment_id
        state.is_auto_rerun = bool(fragment_id) and timer
        state.widget_states.widgets.extend(self._widgets.values())
        for button_id in self._triggers:
            state.widget_states.widgets.add(id=button_id, trigger_value=True)
        self._triggers.clear()
        assert self._socket is not None, "use the session as an async context manager"
        await self._socket.send(message.SerializeToString())

    async def run_script(self) -> None:
        """Ask for a full run and read messages until it has finished.

        ``ScriptRunError`` when it does not finish normally; fragment runs that interleave
        are applied on the way.
        """
        await self.rerun()
        await self._until_full_run()

    async def _until_full_run(self) -> None:
        """Read messages until a full run has finished normally."""
        while True:
            if self.full_run_finished(await self.receive()):
                return

    def full_run_finished(self, message: ForwardMsg) -> bool:
        """Whether ``message`` ends a full run normally (``ScriptRunError`` if abnormally)."""
        if message.WhichOneof("type") != "script_finished" or self._run_fragments:
            return False
        if message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
            return True
        if message.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
            raise ScriptRunError(f"the app did not compile: {self.errors}")
        return False  # cut short by a newer run (st.rerun, or a newer request): wait for that

    # -- what the server says ------------------------------------------------------------

    async def receive(self) -> ForwardMsg:
        """The next message from the app, already applied to the page.

        ``TimeoutError`` after ``timeout_s`` of silence.
        """
        assert self._socket is not None, "use the session as an async context manager"
        data = await asyncio.wait_for(self._socket.recv(decode=False), self.timeout_s)
        if self.watch is not None:
            self.seen.update(match.group(0) for match in self.watch.finditer(data))
        message = ForwardMsg()
        message.ParseFromString(data)
        self._apply(message)
        return message

    def _apply(self, message: ForwardMsg) -> None:
        kind = message.WhichOneof("type")
        if kind == "new_session":
            self._run_id = message.metadata.run.script_run_id
            self._run_fragments = tuple(message.metadata.run.fragment_ids)
            if not self._run_fragments:
                # A full run forgets every fragment timer; its fragments register again.
                self._stop_auto_reruns(list(self._auto_reruns))
        elif kind == "navigation":
            self._page_script_hash = message.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query_string = message.page_info_changed.query_string
        elif kind == "delta":
            self._apply_delta(message)
        elif kind == "auto_rerun":
            self._start_auto_rerun(message.auto_rerun.fragment_id, message.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            self._stop_auto_reruns(list(message.stop_auto_rerun.fragment_ids))
        elif kind == "session_event" and message.session_event.HasField(
            "script_compilation_exception"
        ):
            self._error(f"compile error: {message.session_event.script_compilation_exception}")
        elif kind == "script_finished":
            self._drop_stale(message.script_finished)

    def _apply_delta(self, message: ForwardMsg) -> None:
        delta = message.delta
        path = tuple(message.metadata.delta_path)
        kind = delta.WhichOneof("type")
        if kind == "new_element":
            element = delta.new_element
            self.page[path] = Node(element, None, self._run_id, delta.fragment_id)
            shown = element.WhichOneof("type")
            if shown == "alert" and element.alert.format == Alert.ERROR:
                self._error(f"error: {element.alert.body}")
            elif shown == "exception":
                self._error(f"exception {element.exception.type}: {element.exception.message}")
        elif kind == "add_block":
            self.page[path] = Node(None, delta.add_block, self._run_id, delta.fragment_id)

    def _drop_stale(self, status: int) -> None:
        # What the browser does at the end of a run: whatever this run (or, for a fragment
        # run, this fragment) did not draw again is no longer on the page.
        if status == ForwardMsg.FINISHED_SUCCESSFULLY:
            stale = [p for p, n in self.page.items() if n.run_id != self._run_id]
        elif status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
            stale = [
                p
                for p, n in self.page.items()
                if n.fragment_id in self._run_fragments and n.run_id != self._run_id
            ]
        else:
            return
        for path in stale:
            del self.page[path]

    def _error(self, text: str) -> None:
        if text not in self.errors:
            self.errors.append(text)

    # -- fragment timers -----------------------------------------------------------------

    def _start_auto_rerun(self, fragment_id: str, interval_s: float) -> None:
        running = self._auto_reruns.get(fragment_id)
        if running is not None and running[0] == interval_s:
            return
        self._stop_auto_reruns([fragment_id])
        task = asyncio.create_task(self._auto_rerun(fragment_id, interval_s))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)
        self._auto_reruns[fragment_id] = (interval_s, task)

    async def _auto_rerun(self, fragment_id: str, interval_s: float) -> None:
        # Like the browser's setInterval: every interval, whether the last run ended or not
        # (the server merges fragment reruns that queue up); a closed socket ends it.
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(interval_s)
                await self.rerun(fragment_id)

    def _stop_auto_reruns(self, fragment_ids: list[str]) -> None:
        for fragment_id in fragment_ids:
            entry = self._auto_reruns.pop(fragment_id, None)
            if entry is not None:
                entry[1].cancel()
