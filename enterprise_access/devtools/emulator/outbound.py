"""
The subsidy provider's own outbound calls (catalog pricing, LMS accounts and enrollment, GEAG),
modelled in-process. Each still consults the *internal* faults of ``POST /_control/faults``, so a
test can make a step fail or stall exactly as the real call would.
"""
from http import HTTPStatus


class UpstreamFailure(Exception):
    """An emulated outbound call failed; ``http_error`` tells an HTTP status from a dropped connection."""

    def __init__(self, message, *, status=None):
        super().__init__(message)
        self.status = status

    @property
    def http_error(self):
        return self.status is not None


def http_error_text(status, url):
    """The text ``requests`` gives an HTTPError, which the provider copies into ``detail``."""
    kind = "Client" if status < 500 else "Server"
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {kind} Error: {phrase} for url: {url}"


def outbound_call(emulator, service, method, path, url):
    """Apply an internal fault to one outbound call: None to proceed, the fault's body for a 2xx."""
    fault = emulator.internal_fault(service, method, path)
    if fault is None:
        return None
    if fault.status == 0:
        raise UpstreamFailure(f"('Connection aborted.', RemoteDisconnected('Remote end closed connection'))"
                              f" calling {url}")
    if fault.status >= 400:
        raise UpstreamFailure(http_error_text(fault.status, url), status=fault.status)
    return fault.body or ""
