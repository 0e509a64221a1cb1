"""
The emulator process: one threaded stdlib HTTP server in front of four emulated services.

``Emulator.handle`` is the whole request pipeline, independent of sockets:

1. split the path into the service prefix (``/subsidy``, ``/catalog``, ``/lms``, ``/_control``)
   and the service-relative path; ``/lms/oauth2/access_token`` is the ``oauth`` service;
2. control calls are answered at once (no token, latency, faults, logging or statistics);
3. otherwise count the request, sleep the base latency and take the first matching fault;
   a ``"before"`` fault answers now (delay, status, body or a dropped connection; ``status``
   null only delays and lets the service go on);
4. resolve the URL (an unknown path is Django's HTML 404, before any token check), check
   ``Authorization: JWT <token>`` (not for the token endpoint) and call the handler;
5. an ``"after"`` fault then delays, replaces or drops the answer the service produced;
6. record ``{service, method, path, query, status}`` in the request log.
"""
import html
import json
import socket
import socketserver
import sys
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

from . import catalog_api, control_api, lms_api, subsidy_api
from .runtime import ConnectionState, Runtime
from .store import Store
from .tokens import TokenIssuer, token_endpoint, unauthorized
from .web import HTML, Request, Response, detail, json_response, page_not_found, server_error

SERVICE_ROUTERS = {
    "subsidy": subsidy_api.router,
    "catalog": catalog_api.router,
    "lms": lms_api.router,
}
TOKEN_PATHS = ("/oauth2/access_token", "/oauth2/access_token/")
# Statuses whose responses carry no body and no Content-Length (RFC 9110).
BODYLESS_STATUSES = (204, 304)


def courseware_placeholder(rest):
    """A plain page standing in for the learning MFE at a transaction's ``courseware_url``."""
    page = (
        "<!doctype html>\n<html lang=\"en\">\n<head><title>Courseware (emulated)</title></head>\n<body>\n"
        f"<h1>Courseware (emulated)</h1>\n<p>The learning MFE would open <code>{html.escape(rest)}</code> here. "
        "The upstream emulator serves only this placeholder.</p>\n</body>\n</html>\n"
    )
    return Response(200, page.encode("utf-8"), HTML)


class Emulator:
    """
    The state and request pipeline of one emulator instance, backed by the SQLite file ``db_path``.

    ``run_token`` is whatever its starter passed; ``GET /_control/health`` echoes it, so a program that started an
    emulator can tell that the one answering on the port is its own (``run_demo`` does, before seeding it).
    """

    def __init__(self, db_path, run_token=None):
        self.run_token = run_token
        self.store = Store(db_path)
        self.runtime = Runtime()
        self.tokens = TokenIssuer(self.store)

    def close(self):
        self.store.close()

    def internal_fault(self, service, method, path):
        """Consume and wait out an internal fault on an outbound call; the fault if it sets a status."""
        fault = self.runtime.take_fault(service, method, path, internal=True)
        if fault is None:
            return None
        if fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        return fault if fault.status is not None else None

    def handle(self, method, target, headers, body, base_url, *, connection=None):
        """
        The Response for one HTTP request (``target`` is the raw request-target). ``connection``
        is the ``ConnectionState`` of the TCP connection it arrived on (for the statistics).
        """
        split = urlsplit(target)
        full_path = split.path or "/"
        prefix, _, rest = full_path.lstrip("/").partition("/")
        path = "/" + rest
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        if prefix == "_control":
            service = "_control"
        elif prefix == "lms" and path in TOKEN_PATHS:
            service = "oauth"
        elif prefix in SERVICE_ROUTERS:
            service = prefix
        elif prefix == "learning" and method in ("GET", "HEAD"):
            # Where a transaction's courseware_url points (the learning MFE): a placeholder page, so a demo's link opens.
            return courseware_placeholder(unquote(rest))
        else:
            self.runtime.note_service_request(connection)
            return page_not_found()
        request = Request(
            method=method, service=service, path=path, full_path=full_path, query_pairs=query_pairs,
            headers=headers, body=body, base_url=base_url, query_string=split.query,
        )
        if service == "_control":
            return self._dispatch(control_api.router, request)

        self.runtime.note_service_request(connection)
        if self.runtime.latency_ms:
            time.sleep(self.runtime.latency_ms / 1000)
        fault = self.runtime.take_fault(service, method, path)
        response = None
        if fault is not None and fault.phase == "before":
            response = self._apply_fault(fault, None)
        if response is None:
            response = self._serve(request)
            if fault is not None and fault.phase == "after":
                response = self._apply_fault(fault, response)
        query = {}
        for key, value in query_pairs:
            query.setdefault(key, []).append(value)
        self.runtime.log_request({
            "service": service, "method": method, "path": path, "query": query,
            "status": 0 if response.drop else response.status, "time": time.time(),
        })
        return response

    @staticmethod
    def _apply_fault(fault, served):
        """
        Wait out the fault's delay, then the response it dictates: ``served`` (None before the
        service ran) when ``status`` is null, else a dropped connection or its status and body.
        """
        if fault.delay_ms:
            time.sleep(fault.delay_ms / 1000)
        if fault.status is None:
            return served
        if fault.status == 0:
            return Response(0, drop=True)
        if fault.body is None:
            return json_response(fault.status, {"detail": f"Emulated fault: HTTP {fault.status}"})
        content_type = fault.content_type
        if content_type is None:
            try:
                json.loads(fault.body)
                content_type = "application/json"
            except ValueError:
                content_type = "text/plain; charset=utf-8"
        return Response(fault.status, fault.body.encode("utf-8"), content_type)

    def _serve(self, request):
        if request.service == "oauth":
            if request.method != "POST":
                return detail(405, f'Method "{request.method}" not allowed.')
            return token_endpoint(self.tokens, request)
        router = SERVICE_ROUTERS[request.service]
        handler, answer = router.resolve(request)
        if handler is None:
            return answer  # Django resolves the URL before DRF authenticates
        claims, problem = self.tokens.authenticate(request.headers.get("Authorization"))
        if claims is None:
            if request.service == "subsidy" and request.path.startswith("/api/v1/subsidies/"):
                return subsidy_api.v1_error(401, problem)
            return unauthorized(problem)
        request.claims = claims
        return self._guarded(handler, request)

    def _dispatch(self, router, request):
        handler, answer = router.resolve(request)
        if handler is None:
            return answer
        return self._guarded(handler, request)

    def _guarded(self, handler, request):
        try:
            return handler(self, request)
        except Exception:  # noqa: BLE001 - an emulator bug must answer 500, not kill the connection
            traceback.print_exc(file=sys.stderr)
            return server_error()


class EmulatorRequestHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; every answer carries Content-Length (a 204 carries no body at all)."""

    protocol_version = "HTTP/1.1"
    server_version = "UpstreamEmulator/1.0"
    timeout = 120  # seconds an idle keep-alive connection is kept

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self):
        try:
            body = self._read_body()
            host = self.headers.get("Host") or "%s:%s" % self.server.server_address[:2]
            response = self.server.emulator.handle(
                self.command, self.path, self.headers, body, f"http://{host}", connection=self.connection_state,
            )
            if response.drop:
                self._drop()
                return
            self._write(response)
        except (ConnectionError, TimeoutError, OSError):
            # The client went away (e.g. it timed out during an injected delay).
            self.close_connection = True

    def setup(self):
        super().setup()
        self.connection_state = ConnectionState()
        # Small JSON answers must not wait for a delayed ACK (Nagle): send segments at once.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _write(self, response):
        """Status line, headers and body in one write, so a response is never split across segments."""
        self.log_request(response.status)
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = ""
        head = [
            f"{self.protocol_version} {response.status} {phrase}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
        ]
        bodyless = response.status in BODYLESS_STATUSES
        if not bodyless:
            head += [f"Content-Type: {response.content_type}", f"Content-Length: {len(response.body)}"]
        head += [f"{name}: {value}" for name, value in response.headers.items()]
        if self.close_connection:
            head.append("Connection: close")
        payload = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        if self.command != "HEAD" and not bodyless:
            payload += response.body
        self.wfile.write(payload)

    def _drop(self):
        """Close the socket without a byte of response: the client sees a dropped connection."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        if self.server.verbose:
            sys.stderr.write("%s - %s\n" % (self.address_string(), format % args))


class EmulatorServer(ThreadingHTTPServer):
    """A thread per connection; a deep accept backlog so a few hundred concurrent clients connect."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address, emulator, *, verbose=False):
        self.emulator = emulator
        self.verbose = verbose
        super().__init__(address, EmulatorRequestHandler)

    def server_bind(self):
        # HTTPServer.server_bind resolves the host's FQDN, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        accepted = super().get_request()
        self.emulator.runtime.note_accept()
        return accepted

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


def make_server(host="127.0.0.1", port=0, db_path=":memory:", *, verbose=False, run_token=None):
    """A bound (not yet serving) EmulatorServer; call ``serve_forever()`` to run it."""
    return EmulatorServer((host, port), Emulator(db_path, run_token=run_token), verbose=verbose)
