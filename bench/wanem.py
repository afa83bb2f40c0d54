"""A loopback TCP proxy that imitates a slow, lossy LGWAN link.

Put a :class:`WanEmulator` between a node (client) and a hub (server)::

    with WanEmulator("127.0.0.1", hub_port, LinkProfile(bandwidth=48_000, latency=0.03)) as wan:
        client.get(wan.url + "/feed")

"Downstream" is server -> client, "upstream" is client -> server. The emulator
runs its own asyncio loop in a daemon thread, so it can be driven from plain
synchronous tests. Standard library only.

Pacing: each direction owns one virtual-clock token bucket shared by every
connection. A piece of ``n`` bytes reserves ``n / bandwidth`` seconds on that
clock and is released when its reservation ends; latency is then added per
piece (a piece released at ``t`` arrives at ``t + latency``), so latency is
never serialized across pieces and ordering is kept.

Command line::

    python -m bench.wanem --listen 127.0.0.1:0 --target 127.0.0.1:8000 \\
        --bandwidth 48000 --latency 0.03 --cut-after 2000000
    python -m bench.wanem --measure 480000 --bandwidth 48000
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

__all__ = ["LinkProfile", "WanEmulator", "WanStats", "main", "measure_transfer"]

_UP = 0
_DOWN = 1
_UNCAPPED_READ = 64 * 1024
_MIN_PIECE = 256
_MAX_PIECE = 4096
_BURST_SECONDS = 0.05  # bucket depth: absorbs timer lateness without bursting much
_QUEUE_PIECES = 1024


@dataclass
class LinkProfile:
    """How the emulated link behaves; every field may be changed live with ``set_profile``."""

    bandwidth: int | None = None
    """Bytes per second per direction, shared by all connections; None = unlimited."""
    latency: float = 0.0
    """One-way delay in seconds added to every forwarded piece."""
    cut_after_bytes: int | None = None
    """Cut each connection after it carried this many bytes downstream."""
    cut_jitter: float = 0.0
    """Spread of the cut point: uniform in [cut*(1-j), cut*(1+j)]."""
    cut_probability: float = 0.0
    """Per forwarded piece (either direction), chance to cut the connection."""
    blackhole: bool = False
    """Accept and read, but forward nothing and never answer."""
    refuse: bool = False
    """Reset new connections as soon as they are accepted."""
    corrupt_probability: float = 0.0
    """Per forwarded downstream piece, chance to flip one random byte."""
    seed: int | None = None
    """Seed for the random choices (cuts, jitter, corruption)."""

    def piece_size(self) -> int:
        """Largest piece forwarded at once: small when capped so pacing stays smooth."""
        if self.bandwidth is None:
            return _UNCAPPED_READ
        return max(_MIN_PIECE, min(_MAX_PIECE, self.bandwidth // 25))


class WanStats:
    """Thread-safe counters of what the emulator did."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes_down = 0
        self._bytes_up = 0
        self._connections = 0
        self._cuts = 0
        self._corruptions = 0

    def _add(
        self,
        *,
        bytes_down: int = 0,
        bytes_up: int = 0,
        connections: int = 0,
        cuts: int = 0,
        corruptions: int = 0,
    ) -> None:
        with self._lock:
            self._bytes_down += bytes_down
            self._bytes_up += bytes_up
            self._connections += connections
            self._cuts += cuts
            self._corruptions += corruptions

    @property
    def bytes_down(self) -> int:
        """Bytes delivered server -> client."""
        with self._lock:
            return self._bytes_down

    @property
    def bytes_up(self) -> int:
        """Bytes delivered client -> server."""
        with self._lock:
            return self._bytes_up

    @property
    def connections(self) -> int:
        """Connections accepted (including refused and blackholed ones)."""
        with self._lock:
            return self._connections

    @property
    def cuts(self) -> int:
        """Connections cut on purpose (cut_after_bytes, cut_probability, cut_all)."""
        with self._lock:
            return self._cuts

    @property
    def corruptions(self) -> int:
        """Bytes flipped."""
        with self._lock:
            return self._corruptions

    def snapshot(self) -> dict[str, int]:
        """All counters at one instant."""
        with self._lock:
            return {
                "bytes_down": self._bytes_down,
                "bytes_up": self._bytes_up,
                "connections": self._connections,
                "cuts": self._cuts,
                "corruptions": self._corruptions,
            }

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v}" for k, v in self.snapshot().items())
        return f"WanStats({fields})"


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close a stream abruptly, with a TCP RST."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()


class _Conn:
    """One proxied connection: its two streams and its tasks."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.server: asyncio.StreamWriter | None = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.aborted = False
        self.down_bytes = 0
        self.cut_key: tuple[int, float] | None = None
        self.cut_limit = 0
        self.gone = asyncio.Event()

    def abort(self) -> None:
        """Reset both sides and cancel every task of this connection."""
        if self.aborted:
            return
        self.aborted = True
        _reset(self.client)
        if self.server is not None:
            _reset(self.server)
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()
        self.gone.set()


_Piece = tuple[float, bytes, bool]


class WanEmulator:
    """Loopback TCP proxy to ``target_host:target_port`` that behaves like a bad WAN link."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        profile: LinkProfile | None = None,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.listen_host = listen_host
        self._listen_port = listen_port
        self._lock = threading.Lock()
        self._profile = dataclasses.replace(profile) if profile is not None else LinkProfile()
        self._rng = random.Random(self._profile.seed)
        self.stats = WanStats()
        self._port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._conns: set[_Conn] = set()
        self._next_free = [0.0, 0.0]
        self._start_error: OSError | None = None

    # -- public API --------------------------------------------------------------

    @property
    def port(self) -> int:
        """The listening port (known once started)."""
        if not self._port:
            raise RuntimeError("WanEmulator is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the proxy, e.g. ``http://127.0.0.1:PORT``."""
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"http://{host}:{self.port}"

    @property
    def profile(self) -> LinkProfile:
        """A copy of the profile in force."""
        with self._lock:
            return dataclasses.replace(self._profile)

    def set_profile(self, profile: LinkProfile) -> None:
        """Change the link's behaviour; applies to the next piece of every connection."""
        with self._lock:
            self._profile = dataclasses.replace(profile)
            if profile.seed is not None:
                self._rng.seed(profile.seed)

    def start(self) -> None:
        """Start listening in a daemon thread; returns once the port is open."""
        if self._thread is not None:
            raise RuntimeError("WanEmulator already started")
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run, args=(loop, ready), name="wanem", daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10):
            raise RuntimeError("WanEmulator did not start within 10 s")
        if self._start_error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            raise self._start_error

    def stop(self) -> None:
        """Close the listener and every open connection, then end the thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or not thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=10)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            self._thread = None

    def cut_all(self) -> None:
        """Cut (reset) every open connection now."""
        loop = self._loop
        if loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._cut_all(), loop).result(timeout=10)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- loop thread -------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        try:
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._handle, self.listen_host, self._listen_port)
                )
                self._port = int(self._server.sockets[0].getsockname()[1])
            except OSError as exc:  # reported to start()
                self._start_error = exc
                return
            finally:
                ready.set()
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._conns):
            conn.abort()
        self._conns.clear()

    async def _cut_all(self) -> None:
        conns = [c for c in self._conns if not c.aborted]
        for conn in conns:
            conn.abort()
        self.stats._add(cuts=len(conns))

    def _cut(self, conn: _Conn) -> None:
        if not conn.aborted:
            self.stats._add(cuts=1)
            conn.abort()

    def _current(self) -> LinkProfile:
        with self._lock:
            return self._profile

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats._add(connections=1)
        profile = self._current()
        if profile.refuse:
            _reset(writer)
            return
        conn = _Conn(writer)
        task = asyncio.current_task()
        if task is not None:
            conn.tasks.add(task)
        self._conns.add(conn)
        writer.transport.set_write_buffer_limits(high=0)
        try:
            if profile.blackhole:
                await self._swallow(reader, conn)
                return
            try:
                s_reader, s_writer = await asyncio.open_connection(self.target_host, self.target_port)
            except OSError:
                conn.abort()
                return
            conn.server = s_writer
            if conn.aborted:  # cut while connecting
                _reset(s_writer)
                return
            s_writer.transport.set_write_buffer_limits(high=0)
            up = asyncio.create_task(self._pump(reader, s_writer, _UP, conn))
            down = asyncio.create_task(self._pump(s_reader, writer, _DOWN, conn))
            conn.tasks.update((up, down))
            await asyncio.wait((up, down))
            if not conn.aborted:
                writer.close()
                s_writer.close()
        except asyncio.CancelledError:
            if not conn.aborted:
                raise
        except OSError:
            conn.abort()
        finally:
            self._conns.discard(conn)

    async def _swallow(self, reader: asyncio.StreamReader, conn: _Conn) -> None:
        """Blackhole: read and drop until the client goes, then stay silent until cut."""
        try:
            while await reader.read(_UNCAPPED_READ):
                pass
        except OSError:
            conn.abort()
            return
        await conn.gone.wait()

    async def _pump(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        direction: int,
        conn: _Conn,
    ) -> None:
        """Read one direction, apply the profile, and queue timed pieces for delivery."""
        queue: asyncio.Queue[_Piece | None] = asyncio.Queue(maxsize=_QUEUE_PIECES)
        deliver = asyncio.create_task(self._deliver(queue, dst, direction, conn))
        conn.tasks.add(deliver)
        try:
            while True:
                try:
                    data = await src.read(self._current().piece_size())
                except OSError:
                    conn.abort()
                    return
                if conn.aborted:
                    return
                if not data:
                    await queue.put(None)
                    await deliver
                    return
                while data:
                    profile = self._current()
                    size = profile.piece_size()
                    piece, data = data[:size], data[size:]
                    if profile.blackhole:
                        continue
                    if profile.cut_probability > 0 and self._rng.random() < profile.cut_probability:
                        self._cut(conn)
                        return
                    last = False
                    if direction == _DOWN:
                        limit = self._cut_limit(conn, profile)
                        if limit is not None and conn.down_bytes + len(piece) >= limit:
                            piece = piece[: max(0, limit - conn.down_bytes)]
                            last = True
                        conn.down_bytes += len(piece)
                        corrupt = profile.corrupt_probability
                        if piece and corrupt > 0 and self._rng.random() < corrupt:
                            piece = self._corrupt(piece)
                    release = await self._pace(direction, len(piece), profile.bandwidth)
                    await queue.put((release + profile.latency, piece, last))
                    if last:
                        await deliver
                        return
        finally:
            if conn.aborted:
                deliver.cancel()

    async def _deliver(
        self,
        queue: asyncio.Queue[_Piece | None],
        dst: asyncio.StreamWriter,
        direction: int,
        conn: _Conn,
    ) -> None:
        """Write queued pieces when they are due; forward EOF; perform a scheduled cut."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                item = await queue.get()
                if item is None:
                    if dst.can_write_eof():
                        dst.write_eof()
                    return
                due, piece, last = item
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if piece:
                    # count first, so a reader never sees bytes the stats do not
                    if direction == _DOWN:
                        self.stats._add(bytes_down=len(piece))
                    else:
                        self.stats._add(bytes_up=len(piece))
                    dst.write(piece)
                    await dst.drain()
                if last:
                    self._cut(conn)
                    return
        except OSError:
            conn.abort()

    async def _pace(self, direction: int, size: int, bandwidth: int | None) -> float:
        """Reserve ``size`` bytes on the direction's shared bucket; return the release time."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        if bandwidth is None or bandwidth <= 0:
            return now
        start = max(self._next_free[direction], now - _BURST_SECONDS)
        release = start + size / bandwidth
        self._next_free[direction] = release
        if release > now:
            await asyncio.sleep(release - now)
        return max(release, now)

    def _cut_limit(self, conn: _Conn, profile: LinkProfile) -> int | None:
        if profile.cut_after_bytes is None:
            return None
        key = (profile.cut_after_bytes, profile.cut_jitter)
        if conn.cut_key != key:
            conn.cut_key = key
            j = max(0.0, profile.cut_jitter)
            factor = self._rng.uniform(1 - j, 1 + j) if j else 1.0
            conn.cut_limit = max(0, round(profile.cut_after_bytes * factor))
        return conn.cut_limit

    def _corrupt(self, piece: bytes) -> bytes:
        buf = bytearray(piece)
        i = self._rng.randrange(len(buf))
        buf[i] ^= self._rng.randrange(1, 256)
        self.stats._add(corruptions=1)
        return bytes(buf)


# -- measurement ---------------------------------------------------------------


def measure_transfer(
    nbytes: int = 480_000,
    bandwidth: int | None = 48_000,
    latency: float = 0.0,
    timeout: float = 120.0,
) -> float:
    """Download ``nbytes`` from a local source through the emulator; return seconds taken.

    The clock runs from connect to the last byte received. At 48,000 B/s, 480 KB
    should take about 10 s.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(timeout)
    payload = bytes(range(256)) * (nbytes // 256) + bytes(nbytes % 256)

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            try:
                conn.sendall(payload)
                conn.shutdown(socket.SHUT_WR)
                conn.settimeout(timeout)
                conn.recv(1)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    profile = LinkProfile(bandwidth=bandwidth, latency=latency)
    try:
        with WanEmulator("127.0.0.1", listener.getsockname()[1], profile) as wan:
            began = time.monotonic()
            received = 0
            with socket.create_connection(("127.0.0.1", wan.port), timeout=timeout) as client:
                while received < nbytes:
                    chunk = client.recv(65536)
                    if not chunk:
                        break
                    received += len(chunk)
            elapsed = time.monotonic() - began
    finally:
        listener.close()
        thread.join(timeout=5)
    if received != nbytes:
        raise RuntimeError(f"received {received} of {nbytes} bytes")
    return elapsed


# -- command line ---------------------------------------------------------------


def _hostport(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator from the command line until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.wanem",
        description="Loopback TCP proxy imitating a slow, lossy WAN.",
    )
    parser.add_argument("--listen", type=_hostport, default=("127.0.0.1", 0), help="HOST:PORT")
    parser.add_argument("--target", type=_hostport, help="HOST:PORT of the server")
    parser.add_argument("--bandwidth", type=int, default=None, help="bytes/s per direction")
    parser.add_argument("--latency", type=float, default=0.0, help="one-way delay, seconds")
    parser.add_argument("--cut-after", type=int, default=None, help="downstream bytes per conn")
    parser.add_argument("--cut-jitter", type=float, default=0.0)
    parser.add_argument("--cut-probability", type=float, default=0.0)
    parser.add_argument("--corrupt-probability", type=float, default=0.0)
    parser.add_argument("--blackhole", action="store_true")
    parser.add_argument("--refuse", action="store_true")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--measure",
        type=int,
        metavar="BYTES",
        default=None,
        help="instead of proxying, time a download of BYTES through the emulator and exit",
    )
    args = parser.parse_args(argv)

    if args.measure is not None:
        elapsed = measure_transfer(args.measure, args.bandwidth, args.latency)
        ideal = args.measure / args.bandwidth if args.bandwidth else 0.0
        print(f"{args.measure} bytes at {args.bandwidth} B/s: {elapsed:.3f} s (ideal {ideal:.3f} s)")
        return 0
    if args.target is None:
        parser.error("--target is required")

    profile = LinkProfile(
        bandwidth=args.bandwidth,
        latency=args.latency,
        cut_after_bytes=args.cut_after,
        cut_jitter=args.cut_jitter,
        cut_probability=args.cut_probability,
        blackhole=args.blackhole,
        refuse=args.refuse,
        corrupt_probability=args.corrupt_probability,
        seed=args.seed,
    )
    listen_host, listen_port = args.listen
    wan = WanEmulator(args.target[0], args.target[1], profile, listen_host, listen_port)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background
    signal.signal(signal.SIGTERM, _interrupt)
    wan.start()
    print(wan.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        wan.stop()
        print(wan.stats, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
