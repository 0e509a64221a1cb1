"""
Local networking for development tools, tests and benchmarks: a free port, a port that never answers, whether a
port can be used, whether a process we started is the one listening on it, and waiting until a server answers.
"""
import errno
import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path

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


def port_problem(port: int, host: str = "127.0.0.1") -> str | None:
    """
    Why a server could not listen on ``host:port`` now ("is in use ...", "cannot be bound ..."), or None if it could.

    Two probes, and neither sends a byte. A TCP connect finds anything already listening there (another demo, say);
    it comes first because on some systems (the BSDs, macOS) a bind with ``SO_REUSEADDR`` succeeds beside a
    listener on the wildcard address. A bind, with ``SO_REUSEADDR`` as the emulator and Django's server bind, finds
    a port held without listening, a privileged port, or an address this machine does not have; a port left in
    TIME_WAIT by the last demo passes it, as it passes the servers' own bind.
    """
    try:
        with socket.create_connection((host, port), timeout=1):
            return "is in use: something is listening on it"
    except OSError:
        pass  # refused (nothing listens) or no answer in time: the bind below decides
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return "is in use: another socket holds it"
            return f"cannot be bound ({exc.strerror or exc})"
    return None


def _listening_inodes(port: int) -> set[str] | None:
    """The inodes of the TCP sockets listening on ``port`` (any address), from /proc; None without /proc."""
    inodes, readable = set(), False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for row in rows:
            fields = row.split()
            # local_address is ADDR:PORT in hex; state 0A is LISTEN; the inode is the tenth field.
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes if readable else None


def listens_on(pid: int, port: int) -> bool | None:
    """
    Whether process ``pid`` itself holds a socket listening on TCP ``port``: True, False, or None where the system
    cannot tell (no Linux ``/proc``, or the process's descriptors are not ours to read).

    This is how a tool that started a server knows the port answers with *its* child, before sending it anything.
    """
    inodes = _listening_inodes(port)
    if inodes is None:
        return None
    if not inodes:
        return False
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False  # the process is gone
    except PermissionError:
        return None
    for descriptor in descriptors:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{descriptor}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:[") and target[len("socket:["):-1] in inodes:
            return True
    return False


def wait_until_listening(process, port: int, *, what: str, host: str = "127.0.0.1", timeout: float = 30,
                         error=RuntimeError) -> None:
    """
    Wait until ``process`` (a ``subprocess.Popen`` we started) listens on ``port``, without sending it a byte.

    Where ``/proc`` shows socket owners, only a listening socket held by ``process`` counts: if anything else took
    the port, the child fails to bind and exits, and ``error`` says so. Elsewhere a successful TCP connect counts,
    and the caller must still check who answers (``run_demo`` asks for its per-run token).
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise error(f"The {what} exited with code {process.returncode} before listening on {host}:{port} "
                        f"(see its output above; did something else take the port?).")
        owned = listens_on(process.pid, port)
        if owned:
            return
        if owned is None:
            try:
                with socket.create_connection((host, port), timeout=1):
                    return
            except OSError:
                pass
        if time.monotonic() >= deadline:
            raise error(f"The {what} (pid {process.pid}) was not listening on {host}:{port} within {timeout:g}s.")
        time.sleep(0.1)


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
