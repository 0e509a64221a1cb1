"""
Local networking for development tools, tests and benchmarks: a free port, a port that never answers, and
waiting until a server we started answers.
"""
import socket
import time
from contextlib import contextmanager

import requests


def free_port(host: str = "127.0.0.1") -> int:
    """
    A TCP port nothing listens on at the moment of the call (the OS picks it, then we let it go).

    Connecting to it is refused at once, which is also how tests get a "service is down" address. Another process
    may take it before the caller binds it; servers that can bind port 0 themselves should do that instead.
    """
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@contextmanager
def silent_listener(host: str = "127.0.0.1", backlog: int = 64):
    """A port that accepts connections and never answers (a hung upstream, cache or database); yields the port."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        sock.listen(backlog)
        yield sock.getsockname()[1]


def wait_until_up(url: str, *, what: str, process=None, timeout: float = 30, error=RuntimeError) -> None:
    """
    Poll ``url`` until it answers with any HTTP status, or raise ``error`` with a message saying what failed.

    ``process`` is the ``subprocess.Popen`` serving it, if we started one: when it exits first we say so at once
    instead of waiting out the timeout. ``error`` lets a management command raise its ``CommandError``.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise error(f"The {what} exited with code {process.returncode} before answering at {url}; "
                        f"see its output.")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            if time.monotonic() >= deadline:
                raise error(f"The {what} did not answer at {url} within {timeout:g}s.") from None
            time.sleep(0.1)
