"""A TCP proxy that misbehaves on command: slow responses, a partition, an upload held mid-flight.

Put in front of the S3 server or the chain (a neuron is given the proxy's address instead of the
server's), it forwards bytes both ways until told otherwise:

- `delay_s`: every response waits this long before its first byte reaches the client (a slow or
  far-away server; the request itself goes through at once);
- `partitioned`: nothing passes either way. New connections are accepted and then ignored, live ones
  stall, as when packets are dropped: the client sees only its own timeouts. Healing closes what
  stalled, as a real network's resets do after a partition, and new connections go through again;
- `hold_uploads(pattern)`: the headers of a `PUT` whose request line matches `pattern` (a bytes regular
  expression) are forwarded, its body is not; `upload_held` is set and `held_request` names it, so a
  test can kill the uploader while its object is half-sent.

Used by bench/faults.py and the tests; it runs its own event loop in a daemon thread, so blocking
callers (the benchmark, a test) can drive it.
"""
from __future__ import annotations

import asyncio
import re
import threading
from dataclasses import dataclass, field

CHUNK = 64 * 1024


@dataclass
class FaultProxy:
    upstream_port: int
    upstream_host: str = "127.0.0.1"
    port: int = 0                       # 0: one the OS hands out (see `port` after start)
    delay_s: float = 0.0
    partitioned: bool = False
    upload_held: threading.Event = field(default_factory=threading.Event)
    connections: int = 0                # accepted so far
    held_request: bytes | None = None   # the request line of the upload last held
    _hold_pattern: re.Pattern | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _server: asyncio.AbstractServer | None = None
    _thread: threading.Thread | None = None
    _healed: asyncio.Event | None = None
    _writers: set = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        ready = threading.Event()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(self._serve(ready))
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name=f"fault-proxy-{self.upstream_port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fault proxy did not start")
        return self

    async def _serve(self, ready: threading.Event) -> None:
        self._healed = asyncio.Event()
        self._healed.set()
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()

    def stop(self) -> None:
        if self._loop is None:
            return

        async def close() -> None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None

    # --- faults --------------------------------------------------------------------------------

    def partition(self) -> None:
        self.partitioned = True
        self._loop.call_soon_threadsafe(self._healed.clear)

    def heal(self) -> None:
        """End a partition: connections that stalled in it are closed; new ones pass."""
        self.partitioned = False

        def reopen() -> None:
            self._healed.set()
        self._loop.call_soon_threadsafe(reopen)

    def hold_uploads(self, pattern: bytes | None) -> None:
        """Hold the body of every PUT whose request line matches `pattern` (None: hold nothing)."""
        self.upload_held.clear()
        self._hold_pattern = re.compile(pattern) if pattern is not None else None

    # --- forwarding ----------------------------------------------------------------------------

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        upstream_writer = None
        try:
            if self.partitioned:
                await self._swallow(reader)
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(self.upstream_host,
                                                                                 self.upstream_port)
            except OSError:
                return   # the server is down: the client sees its connection closed
            self._writers.add(upstream_writer)
            turn = {"awaiting_reply": False}
            pumps = [asyncio.ensure_future(self._requests(reader, upstream_writer, turn)),
                     asyncio.ensure_future(self._replies(upstream_reader, writer, turn))]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        """Read and drop until the partition heals (then the connection is closed) or the client leaves."""
        healed = asyncio.ensure_future(self._healed.wait())
        try:
            while not healed.done():
                read = asyncio.ensure_future(reader.read(CHUNK))
                await asyncio.wait([read, healed], return_when=asyncio.FIRST_COMPLETED)
                if read.done() and not read.result():
                    return
                read.cancel()
        finally:
            healed.cancel()

    async def _stalled(self) -> bool:
        """Wait out a partition that began on a live connection; True: close it (as a reset would)."""
        if not self.partitioned:
            return False
        await self._healed.wait()
        return True

    async def _requests(self, reader, writer, turn) -> None:
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk or await self._stalled():
                return
            if not turn["awaiting_reply"]:   # the first bytes of a request
                turn["awaiting_reply"] = True
                line = chunk.split(b"\r\n", 1)[0]
                pattern = self._hold_pattern
                if pattern is not None and line.startswith(b"PUT ") and pattern.search(line):
                    writer.write(chunk.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n")   # headers only
                    await writer.drain()
                    self.held_request = line
                    self.upload_held.set()
                    await reader.read()   # until the client goes away (killed); its body never arrives
                    return
            writer.write(chunk)
            await writer.drain()

    async def _replies(self, reader, writer, turn) -> None:
        while True:
            chunk = await reader.read(CHUNK)
            if not chunk or await self._stalled():
                return
            if turn["awaiting_reply"]:
                turn["awaiting_reply"] = False
                if self.delay_s > 0:
                    await asyncio.sleep(self.delay_s)
                if self.partitioned and await self._stalled():
                    return
            writer.write(chunk)
            await writer.drain()
