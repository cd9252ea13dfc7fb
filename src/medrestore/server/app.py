"""The local web viewer's HTTP server (``medrestore view``): a JSON API over :class:`~medrestore.tasks.viewer.Viewer`
and one static page (``static/index.html``, plain HTML and JavaScript, nothing fetched from the internet).

Standard library only (:class:`http.server.ThreadingHTTPServer`); it binds to ``127.0.0.1`` unless told otherwise,
and reads only the files of the folder it was started on.

API (JSON unless noted; errors are ``{"error": message}`` with 400 for bad input, 403 outside the folder or for a
refused request, 404 for unknown studies or results, 409 for a cancelled job):

==========================================================  =====================================================
``GET  /``                                                  the viewer page (it holds the session token)
``GET  /api/operations``                                    operations and their parameters
``GET  /api/files?path=P``                                  entries of a folder inside the root
``GET  /api/studies``                                       the open studies
``POST /api/studies`` ``{"path", "reference"?}``            open a study
``GET  /api/studies/S``                                     a study: geometry, window, reference, results
``DELETE /api/studies/S``                                   close a study (its images leave memory)
``POST /api/studies/S/reference`` ``{"path"}``              set (or with ``null`` clear) the reference
``POST /api/studies/S/run`` ``{"operation", "parameters"}`` run an operation (waits for it); the new result
``GET  /api/studies/S/slice?source=&axis=&index=&frame=``   a slice as PNG (``&low=&high=`` for the window)
``GET  /api/studies/S/metrics?source=&convention=&masked=`` metrics against the reference (``null`` without)
``GET  /api/studies/S/results/R/download``                  the result file, as written
``POST /api/studies/S/results/R/continue``                  a new study from the result (same reference)
``GET  /api/jobs?study=S&all=true``                         waiting and running jobs (``all``: finished too)
``DELETE /api/jobs/J``                                      cancel a job
==========================================================  =====================================================

Security model (a browser on the same machine may also be showing hostile pages):

* every path a request names resolves inside the root (or names a zoo model or a keyword) before anything is
  opened, with one answer for "outside" whether or not a file is there (:meth:`Viewer.resolve`);
* the ``Host`` header must name this server with its port: an IP address, ``localhost``, the address it listens
  on, or (listening on every interface) this machine's name; a DNS-rebound name is refused (an IP address
  cannot be rebound);
* state-changing requests (``POST``, ``DELETE``) need the session token of the page in the
  :data:`TOKEN_HEADER` header, an ``Origin`` (when sent) that is this server, and ``POST`` a JSON body
  (``Content-Type: application/json``): a cross-site form or ``fetch`` can send none of these;
* a client gets :data:`READ_TIMEOUT_SECONDS` for each read of its request and :data:`REQUEST_DEADLINE_SECONDS`
  for all of it (waiting on an open connection included; then the connection is cut), a body of at most
  :data:`MAX_BODY_BYTES` with a valid ``Content-Length``, and at most :data:`MAX_CONNECTIONS` connections are
  served at once (more get 503); malformed requests get a 4xx answer.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import math
import re
import secrets
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from medrestore.core.errors import MedrestoreError
from medrestore.tasks.viewer import Cancelled, Viewer

MAX_BODY_BYTES = 1 << 20
"""Largest request body accepted (requests carry paths and parameters, never images)."""
READ_TIMEOUT_SECONDS = 15.0
"""Longest wait for each read of a request (its line, headers, body) before the connection is closed."""
REQUEST_DEADLINE_SECONDS = 30.0
"""Longest time from waiting for a request to having read its headers and body: a client trickling a byte at a time
(each read within :data:`READ_TIMEOUT_SECONDS`) is cut off then."""
MAX_CONNECTIONS = 32
"""Connections served at once; more are answered 503 at once and closed."""
TOKEN_HEADER = "X-Medrestore-Token"
"""Header carrying the session token (in the page) that state-changing requests need."""
TOKEN_PLACEHOLDER = b"@SESSION_TOKEN@"
"""Where :func:`page` puts the token in ``static/index.html``."""
LOCAL_NAMES = ("localhost", "127.0.0.1", "[::1]")
"""Host names always accepted with the server's port, besides the address it listens on."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def page(token: str = "") -> bytes:
    """The viewer's single page, holding the session ``token``."""
    html = resources.files("medrestore.server").joinpath("static/index.html").read_bytes()
    return html.replace(TOKEN_PLACEHOLDER, token.encode("ascii"))


class ApiError(Exception):
    """An error with its HTTP status."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def finite(payload: Any) -> Any:
    """``payload`` with every non-finite float as the string ``"inf"``, ``"-inf"`` or ``"nan"`` (JSON has none;
    the PSNR of an image against itself is infinite)."""
    if isinstance(payload, float) and not math.isfinite(payload):
        return "nan" if math.isnan(payload) else "inf" if payload > 0 else "-inf"
    if isinstance(payload, dict):
        return {key: finite(value) for key, value in payload.items()}
    if isinstance(payload, (list, tuple)):
        return [finite(value) for value in payload]
    return payload


def _number(query: dict[str, list[str]], name: str, kind: type = int) -> Any:
    values = query.get(name)
    if not values or values[0] == "":
        return None
    try:
        return kind(values[0])
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} must be {'an integer' if kind is int else 'a number'}, got {values[0]!r}") from None


def _text(query: dict[str, list[str]], name: str, default: str) -> str:
    values = query.get(name)
    return values[0] if values else default


class ViewerHandler(BaseHTTPRequestHandler):
    """Routes of the module docstring onto the server's :class:`Viewer`, after the checks of its security model."""

    server: ViewerServer
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT_SECONDS  # socket timeout of every read (StreamRequestHandler.setup)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    def handle_one_request(self) -> None:
        self._deadline = threading.Timer(self.server.request_deadline, self._cut)  # cancelled once the body is read
        self._deadline.daemon = True
        self._deadline.start()
        try:
            super().handle_one_request()
        except TimeoutError:  # a client that stopped sending part-way: drop it (the base class only covers the request line)
            self.close_connection = True
        except OSError:  # the deadline cut the connection
            self.close_connection = True
        finally:
            self._deadline.cancel()

    def _cut(self) -> None:
        """:data:`REQUEST_DEADLINE_SECONDS` passed before the request was read: end the connection (reads return EOF)."""
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- plumbing --------------------------------------------------------------------------
    def _send(self, status: HTTPStatus, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; frame-ancestors 'none'")
        self.send_header("Referrer-Policy", "no-referrer")
        if self.close_connection:
            self.send_header("Connection", "close")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(finite(payload), allow_nan=False, default=str).encode(), "application/json")

    def _content_length(self) -> int:
        """The request's ``Content-Length`` (0 without); chunked or malformed lengths refused."""
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length, not Transfer-Encoding")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return 0
        if len(set(values)) > 1 or not values[0].strip().isdigit():
            raise ApiError(HTTPStatus.BAD_REQUEST, f"Content-Length must be one whole number of bytes, got {', '.join(values)!r}")
        length = int(values[0])
        if length > MAX_BODY_BYTES:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body of {length} bytes; at most {MAX_BODY_BYTES}")
        return length

    def _body(self) -> dict[str, Any]:
        raw = self._pending_body or b"{}"
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"request body is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
        return body

    def _read_body(self) -> None:
        """Read the body now (before any answer, so that the connection stays in step); refuse a bad length."""
        self._pending_body = b""
        length = self._content_length()
        if length:
            data = self.rfile.read(length)
            if len(data) < length:
                raise ApiError(HTTPStatus.BAD_REQUEST, f"request body ended after {len(data)} of {length} bytes")
            self._pending_body = data

    def _check_host(self) -> None:
        host = self.headers.get("Host")
        if host is None or not self.server.serves_host(host):
            raise ApiError(HTTPStatus.FORBIDDEN, f"Host {host!r} is not this viewer's address ({self.server.url})")

    def _check_state_change(self) -> None:
        """A POST or DELETE: the page's token, no foreign Origin, and for POST a JSON body."""
        origin = self.headers.get("Origin")
        if origin is not None and origin.strip().lower() != f"http://{self.headers.get('Host', '').strip().lower()}":  # same origin as the page
            raise ApiError(HTTPStatus.FORBIDDEN, f"requests from {origin!r} are refused: only this viewer's page may change its state")
        if not hmac.compare_digest(self.headers.get(TOKEN_HEADER, "").encode(), self.server.token.encode()):
            raise ApiError(HTTPStatus.FORBIDDEN, f"missing or wrong {TOKEN_HEADER} header (the token is in the viewer's page)")
        if self.command == "POST" and self.headers.get_content_type() != "application/json":
            raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the request body as Content-Type: application/json")

    def _dispatch(self, method: str) -> None:
        self._pending_body = b""
        try:
            try:
                self._read_body()
                self._deadline.cancel()  # read in time: the answer may take as long as its work
            except ApiError:
                self.close_connection = True  # the body was not read: the connection cannot carry another request
                raise
            if _CONTROL.search(self.path) or _CONTROL.search(unquote(self.path)):
                raise ApiError(HTTPStatus.BAD_REQUEST, "the request's path holds a control character (NUL, newline, …)")
            self._check_host()
            if method in ("POST", "DELETE"):
                self._check_state_change()
            url = urlparse(self.path)
            parts = [p for p in url.path.split("/") if p]
            query = parse_qs(url.query)
            self._route(method, parts, query)
        except ApiError as error:
            self._json({"error": str(error)}, error.status)
        except PermissionError as error:
            self._json({"error": str(error)}, HTTPStatus.FORBIDDEN)
        except (IndexError, KeyError) as error:  # a failure inside the work, not an unknown study, result or job
            self._json({"error": f"{type(error).__name__}: {error}"}, HTTPStatus.INTERNAL_SERVER_ERROR)
        except LookupError as error:
            self._json({"error": str(error.args[0] if error.args else error)}, HTTPStatus.NOT_FOUND)
        except Cancelled as error:
            self._json({"error": str(error)}, HTTPStatus.CONFLICT)
        except MedrestoreError as error:
            self._json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        except TimeoutError:
            self.close_connection = True
            self._json({"error": f"the request was not sent within {READ_TIMEOUT_SECONDS:g} s"}, HTTPStatus.REQUEST_TIMEOUT)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # noqa: BLE001 - the page shows what failed instead of a dropped connection
            self._json({"error": f"{type(error).__name__}: {error}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # -- routes ----------------------------------------------------------------------------
    def _route(self, method: str, parts: list[str], query: dict[str, list[str]]) -> None:
        viewer = self.server.viewer
        if method == "GET" and parts in ([], ["index.html"]):
            self._send(HTTPStatus.OK, page(self.server.token), "text/html; charset=utf-8")
            return
        if not parts or parts[0] != "api":
            raise LookupError(f"no page {self.path!r}")
        route = parts[1:]
        if method == "GET" and route == ["operations"]:
            self._json(viewer.operations())
        elif method == "GET" and route == ["files"]:
            self._json(viewer.list_folder(_text(query, "path", "")))
        elif method == "GET" and route == ["studies"]:
            self._json(viewer.list_studies())
        elif method == "POST" and route == ["studies"]:
            body = self._body()
            if not isinstance(body.get("path"), str) or not isinstance(body.get("reference"), (str, type(None))):
                raise ApiError(HTTPStatus.BAD_REQUEST, "give the image to open as {\"path\": ...} (and a \"reference\" path or null)")
            self._json(viewer.open(body["path"], body.get("reference")).describe(), HTTPStatus.CREATED)
        elif method == "GET" and route == ["jobs"]:
            study = _text(query, "study", "") or None
            self._json(viewer.jobs(study, active=_text(query, "all", "false").lower() != "true"))
        elif method == "DELETE" and len(route) == 2 and route[0] == "jobs":
            self._json(viewer.cancel(route[1]))
        elif len(route) >= 2 and route[0] == "studies":
            self._study_route(method, route[1], route[2:], query)
        else:
            raise LookupError(f"no API route {method} {self.path!r}")

    def _study_route(self, method: str, study_id: str, route: list[str], query: dict[str, list[str]]) -> None:
        viewer = self.server.viewer
        study = viewer.study(study_id)
        if method == "GET" and route == []:
            self._json(study.describe())
        elif method == "DELETE" and route == []:
            viewer.close(study_id)
            self._json({"closed": study_id})
        elif method == "POST" and route == ["reference"]:
            path = self._body().get("path")
            if not isinstance(path, (str, type(None))):
                raise ApiError(HTTPStatus.BAD_REQUEST, "give the reference as {\"path\": ...} or {\"path\": null}")
            self._json(viewer.set_reference(study_id, path).describe())
        elif method == "POST" and route == ["run"]:
            body = self._body()
            parameters = body.get("parameters") or {}
            if not isinstance(body.get("operation"), str) or not isinstance(parameters, dict):
                raise ApiError(HTTPStatus.BAD_REQUEST, "give {\"operation\": NAME, \"parameters\": {...}}")
            result = viewer.run(study_id, body["operation"], parameters)
            self._json(result.describe(), HTTPStatus.CREATED)
        elif method == "GET" and route == ["slice"]:
            axis = _number(query, "axis")
            png = study.slice_png(
                _text(query, "source", "input"), 2 if axis is None else axis, _number(query, "index"),
                _number(query, "frame") or 0, _number(query, "low", float), _number(query, "high", float),
            )  # fmt: skip
            self._send(HTTPStatus.OK, png, "image/png")
        elif method == "GET" and route == ["metrics"]:
            masked = _text(query, "masked", "false").lower() == "true"
            self._json(study.metrics(_text(query, "source", "input"), _text(query, "convention", "default"), masked))
        elif len(route) == 3 and route[0] == "results":
            if route[1] not in study.results:
                raise LookupError(f"no result {route[1]!r} in study {study_id}")
            result = study.results[route[1]]
            if method == "GET" and route[2] == "download":
                self._send(HTTPStatus.OK, result.path.read_bytes(), "application/octet-stream",
                           {"Content-Disposition": f'attachment; filename="{result.path.name}"'})  # fmt: skip
            elif method == "POST" and route[2] == "continue":
                self._json(viewer.continue_from(study_id, route[1]).describe(), HTTPStatus.CREATED)
            else:
                raise LookupError(f"no API route {method} {self.path!r}")
        else:
            raise LookupError(f"no API route {method} {self.path!r}")


class ViewerServer(ThreadingHTTPServer):
    """An HTTP server over one :class:`Viewer`; ``port=0`` picks a free port (see :attr:`url`).

    ``token``: the session token state-changing requests need (default: a fresh random one); :meth:`serves_host`
    says which ``Host`` headers are served.
    """

    daemon_threads = True
    block_on_close = False  # closing never waits for a connection's thread (a browser's keep-alive, a job): they end with the process

    def __init__(self, viewer: Viewer, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False, token: str | None = None) -> None:
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), ViewerHandler)
        self.viewer = viewer
        self.verbose = verbose
        self.token = token or secrets.token_urlsafe(32)
        self.request_deadline = REQUEST_DEADLINE_SECONDS
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        names = {*LOCAL_NAMES, f"[{host}]" if ":" in host else host}
        if host in ("0.0.0.0", "::", ""):  # every interface: this machine's names too
            names |= {socket.gethostname(), socket.getfqdn()}
        self.host_names = frozenset(name.lower() for name in names)

    def serves_host(self, header: str) -> bool:
        """Whether a request's ``Host`` header names this server: its port (none: 80), and a name of
        :attr:`host_names` or an IP address (a DNS-rebinding page reaches the server under a name of its own)."""
        name, _, port = header.strip().lower().rpartition(":")
        if not name or "]" in port:  # no port given ("host" or "[::1]")
            name, port = header.strip().lower(), "80"
        if port != str(self.server_address[1]):
            return False
        if name in self.host_names:
            return True
        try:
            ipaddress.ip_address(name[1:-1] if name.startswith("[") and name.endswith("]") else name)
        except ValueError:
            return False
        return True

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection while fewer than :data:`MAX_CONNECTIONS` are served; else 503 at once."""
        if not self._slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except RuntimeError:  # no thread could be started: its slot is free again
            self._slots.release()
            raise
        # anything else (Ctrl-C while the new thread starts) propagates: that thread, started, frees its own slot

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, notebooks); :meth:`shutdown` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="medrestore-viewer", daemon=True)
        thread.start()
        return thread
