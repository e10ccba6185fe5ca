"""A Streamlit session without a browser: Streamlit's own WebSocket protocol, for load tests that measure the app.

A browser spends most of a page's CPU time drawing it (Plotly charts above all); on a small machine, 16 headless
Chromium sessions measure Chromium. This client does what the browser's Streamlit code does to run a page (open
``/_stcore/stream``, send a ``rerun_script`` BackMsg with the page and its query string, read ForwardMsgs until
the run finishes) and fetches a download button's file as the browser would, at a tiny fraction of the CPU.
"""

from __future__ import annotations

import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg  # noqa: TID251  (the wire format only, not the runtime)
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg  # noqa: TID251


@dataclass
class PageRun:
    seconds: float  # from connecting to the run's end
    downloads: dict[str, str] = field(default_factory=dict)  # download button label -> media URL path
    texts: list[str] = field(default_factory=list)  # markdown bodies, in order
    exceptions: list[str] = field(default_factory=list)


async def run_page(url: str, page: str, query: dict[str, str], timeout: float = 300) -> PageRun:
    """Open ``page`` (its URL path name, e.g. "translate") with ``query`` as a new session; wait for its run."""
    ws_url = url.replace("http://", "ws://").replace("https://", "wss://") + "/_stcore/stream"
    start = time.perf_counter()
    run = PageRun(0.0)
    async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=60) as ws:
        back = BackMsg()
        back.rerun_script.query_string = urllib.parse.urlencode(query)
        back.rerun_script.page_name = page
        await ws.send(back.SerializeToString())
        deadline = start + timeout
        while True:
            raw = await ws.recv()  # binary frames: bytes
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                el = msg.delta.new_element
                which = el.WhichOneof("type")
                if which == "download_button":
                    run.downloads[el.download_button.label] = el.download_button.url
                elif which == "markdown":
                    run.texts.append(el.markdown.body)
                elif which == "exception":
                    run.exceptions.append(f"{el.exception.type}: {el.exception.message}")
            elif kind == "script_finished":
                status = ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                if status == "FINISHED_SUCCESSFULLY":
                    break
                if status == "FINISHED_WITH_COMPILE_ERROR":
                    raise RuntimeError(f"{page}: the page script did not compile")
                # FINISHED_EARLY_FOR_RERUN: the app reran itself (state handed to the next run); keep reading
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{page} did not finish within {timeout:g} s")
    run.seconds = time.perf_counter() - start
    return run


def fetch(url: str, path: str) -> bytes:
    """A media file (a download button's URL path) from the server that made it."""
    with urllib.request.urlopen(urllib.parse.urljoin(url + "/", path.lstrip("/")), timeout=60) as response:
        return response.read()
