"""The local web viewer's HTTP server (``medrestore view``): a JSON API over :class:`~medrestore.tasks.viewer.Viewer`
and one static page (``static/index.html``, plain HTML and JavaScript, nothing fetched from the internet).

Standard library only (:class:`http.server.ThreadingHTTPServer`); it binds to ``127.0.0.1`` unless told otherwise,
and reads only the files of the folder it was started on.

API (JSON unless noted; errors are ``{"error": message}`` with 400 for bad input, 403 outside the folder,
404 for unknown studies or results):

==========================================================  =====================================================
``GET  /``                                                  the viewer page
``GET  /api/operations``                                    operations and their parameters
``GET  /api/files?path=P``                                  entries of a folder inside the root
``POST /api/studies`` ``{"path", "reference"?}``            open a study
``GET  /api/studies/S``                                     a study: geometry, window, reference, results
``POST /api/studies/S/reference`` ``{"path"}``              set (or with ``null`` clear) the reference
``POST /api/studies/S/run`` ``{"operation", "parameters"}`` run an operation; the new result
``GET  /api/studies/S/slice?source=&axis=&index=&frame=``   a slice as PNG (``&low=&high=`` for the window)
``GET  /api/studies/S/metrics?source=&convention=&masked=`` metrics against the reference (``null`` without)
``GET  /api/studies/S/results/R/download``                  the result file, as written
``POST /api/studies/S/results/R/continue``                  a new study from the result (same reference)
==========================================================  =====================================================
"""

from __future__ import annotations

import json
import math
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlparse

from medrestore.core.errors import MedrestoreError
from medrestore.tasks.viewer import Viewer

MAX_BODY_BYTES = 1 << 20
"""Largest request body accepted (requests carry paths and parameters, never images)."""


def page() -> bytes:
    """The viewer's single page."""
    return resources.files("medrestore.server").joinpath("static/index.html").read_bytes()


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
    """Routes of the module docstring onto the server's :class:`Viewer`."""

    server: ViewerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            super().log_message(format, *args)

    # -- plumbing --------------------------------------------------------------------------
    def _send(self, status: HTTPStatus, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload: Any, status: HTTPStatus = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(finite(payload), allow_nan=False, default=str).encode(), "application/json")

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"request body of {length} bytes; at most {MAX_BODY_BYTES}")
        raw = self.rfile.read(length) if length else b"{}"
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as error:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"request body is not JSON: {error}") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "request body must be a JSON object")
        return body

    def _dispatch(self, method: str) -> None:
        url = urlparse(self.path)
        parts = [p for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        try:
            self._route(method, parts, query)
        except ApiError as error:
            self._json({"error": str(error)}, error.status)
        except PermissionError as error:
            self._json({"error": str(error)}, HTTPStatus.FORBIDDEN)
        except LookupError as error:
            self._json({"error": str(error.args[0] if error.args else error)}, HTTPStatus.NOT_FOUND)
        except MedrestoreError as error:
            self._json({"error": str(error)}, HTTPStatus.BAD_REQUEST)
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as error:  # noqa: BLE001 - the page shows what failed instead of a dropped connection
            self._json({"error": f"{type(error).__name__}: {error}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    # -- routes ----------------------------------------------------------------------------
    def _route(self, method: str, parts: list[str], query: dict[str, list[str]]) -> None:
        viewer = self.server.viewer
        if method == "GET" and parts in ([], ["index.html"]):
            self._send(HTTPStatus.OK, page(), "text/html; charset=utf-8")
            return
        if not parts or parts[0] != "api":
            raise LookupError(f"no page {self.path!r}")
        route = parts[1:]
        if method == "GET" and route == ["operations"]:
            self._json(viewer.operations())
        elif method == "GET" and route == ["files"]:
            self._json(viewer.list_folder(_text(query, "path", "")))
        elif method == "POST" and route == ["studies"]:
            body = self._body()
            if not isinstance(body.get("path"), str):
                raise ApiError(HTTPStatus.BAD_REQUEST, "give the image to open as {\"path\": ...}")
            self._json(viewer.open(body["path"], body.get("reference")).describe(), HTTPStatus.CREATED)
        elif len(route) >= 2 and route[0] == "studies":
            self._study_route(method, route[1], route[2:], query)
        else:
            raise LookupError(f"no API route {method} {self.path!r}")

    def _study_route(self, method: str, study_id: str, route: list[str], query: dict[str, list[str]]) -> None:
        viewer = self.server.viewer
        study = viewer.study(study_id)
        if method == "GET" and route == []:
            self._json(study.describe())
        elif method == "POST" and route == ["reference"]:
            self._json(viewer.set_reference(study_id, self._body().get("path")).describe())
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
    """An HTTP server over one :class:`Viewer`; ``port=0`` picks a free port (see :attr:`url`)."""

    daemon_threads = True

    def __init__(self, viewer: Viewer, host: str = "127.0.0.1", port: int = 8765, verbose: bool = False) -> None:
        super().__init__((host, port), ViewerHandler)
        self.viewer = viewer
        self.verbose = verbose

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, notebooks); :meth:`shutdown` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="medrestore-viewer", daemon=True)
        thread.start()
        return thread

