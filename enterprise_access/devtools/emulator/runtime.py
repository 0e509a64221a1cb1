"""
In-memory, per-process state of a running emulator: injected faults, the request log, the base
latency, the per-ledger locks and the connection statistics. None of it is persisted: a restart
or ``reset`` clears it.
"""
import re
import threading
from collections import deque
from dataclasses import asdict, dataclass, replace

SERVICES = ("subsidy", "catalog", "lms", "oauth")
# Services the subsidy emulation itself "calls" while it creates a transaction (internal faults).
INTERNAL_SERVICES = ("catalog", "lms", "geag")
# "before": the fault answers instead of the service (nothing is processed unless status is null).
# "after": the service handles the request (and commits what it writes), then the fault delays,
# replaces or drops its answer.
PHASES = ("before", "after")
REQUEST_LOG_LIMIT = 100_000


@dataclass
class Fault:
    """One injected failure. ``status`` 0 drops the connection; None only adds ``delay_ms``."""

    id: int
    service: str
    method: str  # None matches every method
    path: str  # regex, searched in the path after the service prefix
    status: int
    delay_ms: int
    body: str
    times: int  # None means "until cleared"
    internal: bool
    content_type: str
    phase: str = "before"

    def public(self):
        return asdict(self)


def parse_fault(spec, fault_id):
    """A Fault from its JSON description; ValueError with a readable message if it is invalid."""
    if not isinstance(spec, dict):
        raise ValueError("a fault must be a JSON object")
    internal = bool(spec.get("internal", False))
    services = INTERNAL_SERVICES if internal else SERVICES
    service = spec.get("service")
    if service not in services:
        raise ValueError(f"service must be one of {list(services)}")
    method = spec.get("method")
    if method is not None and (not isinstance(method, str) or not method):
        raise ValueError("method must be an HTTP method or null")
    path = spec.get("path") or ".*"
    try:
        re.compile(path)
    except (re.error, TypeError) as exc:
        raise ValueError(f"path is not a valid regex: {exc}") from exc
    status = spec.get("status", 503)
    if status is not None and (isinstance(status, bool) or not isinstance(status, int)
                               or not (status == 0 or 100 <= status <= 599)):
        raise ValueError("status must be 0 (drop the connection), an HTTP status, or null (delay only)")
    delay_ms = spec.get("delay_ms") or 0
    if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)) or delay_ms < 0:
        raise ValueError("delay_ms must be a non-negative number")
    times = spec.get("times")
    if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
        raise ValueError("times must be a positive integer or null (always)")
    body = spec.get("body")
    if body is not None and not isinstance(body, str):
        raise ValueError("body must be a string (the raw response body) or null")
    phase = spec.get("phase") or "before"
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {list(PHASES)} (default \"before\")")
    if internal and phase != "before":
        raise ValueError('internal faults replace the outbound call itself; only "phase": "before" applies')
    return Fault(
        id=fault_id, service=service, method=method.upper() if method else None, path=path,
        status=status, delay_ms=delay_ms, body=body, times=times, internal=internal,
        content_type=spec.get("content_type"), phase=phase,
    )


class ConnectionState:
    """Per TCP connection: whether it has been counted in ``connections_opened`` yet."""

    __slots__ = ("counted",)

    def __init__(self):
        self.counted = False


class Runtime:
    """Thread-safe holder of the emulator's volatile state."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults = []
        self._next_fault_id = 1
        self._requests = deque(maxlen=REQUEST_LOG_LIMIT)
        self._ledger_locks = {}
        self.latency_ms = 0
        self._stats = {"connections_opened": 0, "requests": 0, "connections_accepted": 0}

    # --- faults -----------------------------------------------------------------------------------

    def add_fault(self, spec):
        with self._lock:
            fault = parse_fault(spec, self._next_fault_id)
            self._next_fault_id += 1
            self._faults.append(fault)
            return fault

    def faults(self):
        with self._lock:
            return [fault.public() for fault in self._faults]

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def take_fault(self, service, method, path, *, internal=False):
        """The oldest fault matching this call, consumed once if it has a ``times`` budget."""
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.internal != internal or fault.service != service:
                    continue
                if fault.method is not None and fault.method != method.upper():
                    continue
                if not re.search(fault.path, path):
                    continue
                if fault.times is not None:
                    remaining = fault.times - 1
                    if remaining <= 0:
                        del self._faults[index]
                    else:
                        self._faults[index] = replace(fault, times=remaining)
                return fault
        return None

    # --- request log ------------------------------------------------------------------------------

    def log_request(self, entry):
        with self._lock:
            self._requests.append(entry)

    def requests(self, service=None):
        with self._lock:
            return [entry for entry in self._requests if service is None or entry["service"] == service]

    def clear_requests(self):
        with self._lock:
            self._requests.clear()

    # --- latency, locks, reset --------------------------------------------------------------------

    def set_latency(self, delay_ms):
        if isinstance(delay_ms, bool) or not isinstance(delay_ms, (int, float)) or delay_ms < 0:
            raise ValueError("delay_ms must be a non-negative number")
        self.latency_ms = delay_ms

    def ledger_lock(self, subsidy_uuid):
        """The lock of one subsidy's ledger; writers ``acquire(blocking=False)`` and answer 429 if taken."""
        with self._lock:
            return self._ledger_locks.setdefault(subsidy_uuid, threading.Lock())

    # --- connection statistics ---------------------------------------------------------------------

    def note_accept(self):
        """A TCP connection was accepted (any, control-only ones included)."""
        with self._lock:
            self._stats["connections_accepted"] += 1

    def note_service_request(self, connection):
        """
        One request to an emulated service (not the control API). The connection it arrived on
        counts in ``connections_opened`` at its first such request, once.
        """
        with self._lock:
            self._stats["requests"] += 1
            if connection is not None and not connection.counted:
                connection.counted = True
                self._stats["connections_opened"] += 1

    def stats(self):
        with self._lock:
            return dict(self._stats)

    def clear_stats(self):
        with self._lock:
            for name in self._stats:
                self._stats[name] = 0

    def reset(self):
        with self._lock:
            self._faults.clear()
            self._requests.clear()
            self.latency_ms = 0
        self.clear_stats()
