"""sd_notify against a real AF_UNIX datagram socket, as systemd listens for it."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgenode.sdnotify import Notifier


@pytest.fixture()
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def _recv(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode("utf-8").split("\n")


def _nothing_waiting(sock: socket.socket) -> bool:
    sock.setblocking(False)
    try:
        sock.recv(4096)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(5)
    return False


def test_ready_status_and_stopping_arrive_as_datagrams_of_key_value_lines(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    n = Notifier.from_environ({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("counter UI on\n127.0.0.1:8800")
    assert _recv(sock) == ["READY=1", "STATUS=counter UI on 127.0.0.1:8800"]
    assert n.status("cursor 42")
    assert _recv(sock) == ["STATUS=cursor 42"]
    assert n.stopping()
    assert _recv(sock) == ["STOPPING=1"]


def test_an_abstract_namespace_address_is_reached_through_its_at_sign() -> None:
    name = f"edgenode-test-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert Notifier.from_environ({"NOTIFY_SOCKET": "@" + name}).ready()
        assert _recv(sock) == ["READY=1"]


def test_watchdog_pings_are_sent_and_throttled_to_a_quarter_of_the_timeout(
    listener: tuple[socket.socket, str],
) -> None:
    sock, path = listener
    n = Notifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000", "WATCHDOG_PID": str(os.getpid())})
    assert n.watchdog_timeout == 0.4 and n.ping_interval == 0.2
    assert n.watchdog()
    assert _recv(sock) == ["WATCHDOG=1"]
    # a busy loop calling it again at once sends nothing more...
    assert not n.watchdog()
    assert _nothing_waiting(sock)
    # ...until a quarter of the timeout has passed
    time.sleep(0.11)
    assert n.watchdog()
    assert _recv(sock) == ["WATCHDOG=1"]


def test_a_watchdog_meant_for_another_process_is_not_answered(listener: tuple[socket.socket, str]) -> None:
    sock, path = listener
    n = Notifier.from_environ({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}, pid=4242)
    assert n.watchdog_timeout is None
    assert not n.watchdog()
    assert n.ready()  # readiness still goes to the socket
    assert _recv(sock) == ["READY=1"]


def test_without_notify_socket_every_call_is_a_no_op() -> None:
    n = Notifier.from_environ({"WATCHDOG_USEC": "1000000"})
    assert not n.enabled
    assert not n.ready("x") and not n.status("x") and not n.stopping() and not n.watchdog()


@pytest.mark.parametrize("env", [{"NOTIFY_SOCKET": "relative/path"}, {"NOTIFY_SOCKET": ""}])
def test_an_unusable_address_disables_notifications(env: dict[str, str]) -> None:
    assert not Notifier.from_environ(env).enabled


@pytest.mark.parametrize("usec", ["abc", "0", "-5"])
def test_a_bad_watchdog_period_means_no_watchdog(usec: str, tmp_path: Path) -> None:
    n = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "s"), "WATCHDOG_USEC": usec})
    assert n.watchdog_timeout is None


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    n = Notifier.from_environ({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not n.ready()
    assert "sd_notify" in caplog.text


def test_a_field_without_equals_or_with_a_newline_is_refused(listener: tuple[socket.socket, str]) -> None:
    _sock, path = listener
    n = Notifier.from_environ({"NOTIFY_SOCKET": path})
    with pytest.raises(ValueError):
        n.notify("READY")
    with pytest.raises(ValueError):
        n.notify("STATUS=a\nREADY=1")
