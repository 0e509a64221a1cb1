"""
free_port, silent_listener, wait_until_up, and the demo's port check and listener-ownership check: the one copy of
each the suite, the demo and the benches use.
"""
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from enterprise_access.devtools.net import (
    free_port,
    listens_on,
    port_problem,
    silent_listener,
    wait_until_listening,
    wait_until_up,
)

# A child that listens on the port in argv[1] and then waits for stdin to close.
LISTENER_CHILD = (
    "import socket, sys\n"
    "s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(1)\n"
    "print('listening', flush=True); sys.stdin.read()\n"
)


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the stdlib's name)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_free_port_is_a_port_nothing_listens_on():
    port = free_port()
    assert 0 < port < 65536
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))


def test_silent_listener_accepts_and_never_answers():
    with silent_listener() as port, socket.create_connection(("127.0.0.1", port), timeout=2) as client:
        client.settimeout(0.2)
        with pytest.raises(TimeoutError):
            client.recv(1)


def test_wait_until_up_returns_once_the_server_answers(http_server):
    wait_until_up(f"{http_server}/anything", what="test server", timeout=5)


def test_wait_until_up_names_a_process_that_died_first():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(timeout=30)
    with pytest.raises(LookupError, match="The demo service exited with code 3 before answering"):
        wait_until_up(f"http://127.0.0.1:{free_port()}/", what="demo service", process=process, timeout=5,
                      error=LookupError)


def test_wait_until_up_gives_up_naming_the_url():
    url = f"http://127.0.0.1:{free_port()}/health/"
    with pytest.raises(RuntimeError, match=f"The emulator did not answer at {url} within 0.3s"):
        wait_until_up(url, what="emulator", timeout=0.3)


def test_port_problem_passes_a_free_port():
    assert port_problem(free_port()) is None


def test_port_problem_names_a_listener_without_sending_it_a_byte():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        assert port_problem(sock.getsockname()[1]) == "is in use: something is listening on it"
        connection, _ = sock.accept()  # the probe's connection was queued before port_problem returned
        with connection:
            connection.settimeout(5)
            assert connection.recv(1) == b""  # closed without a byte


def test_port_problem_names_a_port_bound_but_not_listening():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        assert port_problem(sock.getsockname()[1]) == "is in use: another socket holds it"


def test_port_problem_names_an_address_that_cannot_be_bound():
    # 192.0.2.1 is a documentation address (TEST-NET-1): never one of this machine's.
    assert port_problem(free_port(), host="192.0.2.1") == "cannot be bound (Cannot assign requested address)"


@pytest.fixture
def listening_child():
    """A child process listening on a free port: (process, port)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", LISTENER_CHILD, str(port)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "listening\n"
        yield process, port
    finally:
        process.stdin.close()
        process.wait(timeout=10)


def test_listens_on_tells_the_process_holding_the_socket_from_any_other(listening_child):
    process, port = listening_child
    assert listens_on(process.pid, port) is True
    assert listens_on(os.getpid(), port) is False  # answering on the port is not enough
    assert listens_on(process.pid, free_port()) is False


def test_wait_until_listening_returns_once_the_child_listens(listening_child):
    process, port = listening_child
    wait_until_listening(process, port, what="listener", timeout=10)


def test_wait_until_listening_says_the_child_exited_when_another_process_holds_the_port():
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        port = other.getsockname()[1]
        process = subprocess.Popen([sys.executable, "-c", LISTENER_CHILD, str(port)], stdin=subprocess.PIPE,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with pytest.raises(LookupError, match=rf"^The demo emulator exited with code 1 before listening on "
                                              rf"127\.0\.0\.1:{port}"):
            wait_until_listening(process, port, what="demo emulator", timeout=30, error=LookupError)
        other.setblocking(False)
        with pytest.raises(BlockingIOError):
            other.accept()  # nobody connected to the other process
