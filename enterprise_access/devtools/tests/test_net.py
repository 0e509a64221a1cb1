"""free_port, silent_listener and wait_until_up: the one copy of each the suite, the demo and the benches use."""
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from enterprise_access.devtools.net import free_port, silent_listener, wait_until_up


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
