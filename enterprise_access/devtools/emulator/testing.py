"""
Helpers for tests and benchmarks that talk to a real emulator over HTTP.

    with running_emulator() as emulator:
        emulator.control.seed({...})
        settings.ENTERPRISE_SUBSIDY_URL = emulator.subsidy_url
        ...

``running_emulator`` serves from a background thread on a free port; ``EmulatorControl`` is a
thin client of the control API (it works against a separately started emulator too).
"""
import json
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from .server import make_server

CONTROL_TIMEOUT = 10


class EmulatorControl:
    """Client of ``<base_url>/_control``; every method raises ``requests.HTTPError`` on a non-2xx."""

    def __init__(self, base_url):
        self.base_url = base_url.rstrip("/")
        self._session = requests.Session()

    def _call(self, method, path, payload=None, params=None):
        response = self._session.request(
            method, f"{self.base_url}/_control{path}", json=payload, params=params, timeout=CONTROL_TIMEOUT,
        )
        response.raise_for_status()
        return response.json()

    def health(self):
        return self._call("GET", "/health")

    def seed(self, document):
        """Upsert customers, learners, catalogs, content and subsidies into the seeded baseline."""
        return self._call("POST", "/seed", document)

    def reset(self):
        """Back to the seeded baseline; also clears faults, the request log and latency."""
        return self._call("POST", "/reset")

    def wipe(self):
        """Forget everything, seeded objects included."""
        return self._call("POST", "/wipe")

    def add_fault(self, service, path=".*", *, method=None, status=503, delay_ms=0, body=None, times=None,
                  internal=False, content_type=None, phase="before"):
        """
        Make matching requests fail. ``status=0`` drops the connection, ``status=None`` only delays.
        ``body`` may be a str (sent raw) or any JSON-serializable value. ``phase="after"`` lets the
        service handle the request (and commit its writes) before the fault delays, replaces or
        drops the answer.
        """
        if body is not None and not isinstance(body, str):
            body = json.dumps(body)
        spec = {"service": service, "method": method, "path": path, "status": status, "delay_ms": delay_ms,
                "body": body, "times": times, "internal": internal, "phase": phase}
        if content_type:
            spec["content_type"] = content_type
        return self._call("POST", "/faults", spec)

    def faults(self):
        return self._call("GET", "/faults")

    def clear_faults(self):
        return self._call("DELETE", "/faults")

    def requests(self, service=None):
        """The request log, newest last: ``[{service, method, path, query, status, time}]``."""
        return self._call("GET", "/requests", params={"service": service} if service else None)

    def clear_requests(self):
        return self._call("DELETE", "/requests")

    def set_latency(self, delay_ms):
        return self._call("POST", "/latency", {"delay_ms": delay_ms})

    def reverse(self, transaction_uuid, metadata=None):
        """
        Reverse a committed transaction (the emulated provider cancels its LMS fulfillment first);
        returns the transaction with its reversal. A failed cancellation raises HTTPError (502).
        """
        return self._call("POST", "/reversals", {"transaction_uuid": str(transaction_uuid), "metadata": metadata})

    def transactions(self, subsidy_uuid=None):
        """Every transaction (all states), oldest first."""
        return self._call("GET", "/transactions", params={"subsidy_uuid": str(subsidy_uuid)} if subsidy_uuid else None)

    def enrollments(self):
        return self._call("GET", "/enrollments")

    def stats(self):
        """
        ``{"connections_opened", "requests", "connections_accepted"}`` since start or the last
        reset: connections that carried a service request, service requests, and every TCP
        connection accepted (control-only ones included).
        """
        return self._call("GET", "/stats")

    def clear_stats(self):
        return self._call("DELETE", "/stats")

    def token(self, client_id="emulator-client", client_secret="emulator-secret"):
        """A fresh access token from the emulated LMS, for calling the emulated APIs directly."""
        response = self._session.post(
            f"{self.base_url}/lms/oauth2/access_token",
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
                  "token_type": "jwt"},
            timeout=CONTROL_TIMEOUT,
        )
        response.raise_for_status()
        return response.json()["access_token"]


@dataclass
class RunningEmulator:
    url: str
    control: EmulatorControl
    db_path: str

    @property
    def subsidy_url(self):
        return f"{self.url}/subsidy"

    @property
    def catalog_url(self):
        return f"{self.url}/catalog"

    @property
    def lms_url(self):
        return f"{self.url}/lms"


@contextmanager
def running_emulator(db_path=None, host="127.0.0.1", port=0):
    """
    Serve an emulator from a background thread; yields a RunningEmulator (``.url``, ``.control``).

    Without ``db_path`` the state lives in a temporary SQLite file removed on exit.
    """
    scratch = None
    if db_path is None:
        scratch = tempfile.mkdtemp(prefix="upstream-emulator-")
        db_path = str(Path(scratch) / "emulator.sqlite3")
    server = make_server(host, port, db_path)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="upstream-emulator", daemon=True)
    thread.start()
    try:
        yield RunningEmulator(url=server.url, control=EmulatorControl(server.url), db_path=str(db_path))
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        server.emulator.close()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
