"""The web viewer under attack and under load: paths outside its folder, requests from other sites and names,
malformed and stalled requests, many jobs at once; and what keeps it honest: studies listed and closed, images
under a memory budget, metrics computed once, jobs with progress and cancel."""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage

import medrestore.server.app as app
from medrestore.core.image import Image
from medrestore.cli import view
from medrestore.core.progress import track
from medrestore.server.app import TOKEN_HEADER, ViewerServer, page
from medrestore.tasks import viewer as viewer_module
from medrestore.tasks.evaluate import evaluate_pair
from medrestore.tasks.viewer import OPERATIONS, ImageCache, Operation, Parameter, Viewer, image_bytes
from test_cli_recon import _phantom_kspace
from test_viewer import call, phantom, root, server  # noqa: F401 - pytest fixtures used by name


def raw(server: ViewerServer, data: bytes, timeout: float = 10.0) -> tuple[int, bytes, float]:
    """Send ``data`` as it is on a fresh connection: ``(status, body, seconds to the answer)``; status 0 when the
    server closed the connection without one."""
    host, port = server.server_address[:2]
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.sendall(data)
        received = b""
        while True:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    seconds = time.monotonic() - started
    if not received:
        return 0, b"", seconds
    return int(received.split(b" ", 2)[1]), received.partition(b"\r\n\r\n")[2], seconds


def trickle(server: ViewerServer, data: bytes, every: float) -> float:
    """Send ``data`` a byte at a time, one each ``every`` seconds; seconds until the server cuts the connection."""
    started = time.monotonic()
    with socket.create_connection(server.server_address[:2], timeout=10) as connection:
        try:
            for byte in data:
                connection.sendall(bytes([byte]))
                time.sleep(every)
            connection.recv(1)  # the server's end of the connection, or its answer
        except OSError:
            pass
    return time.monotonic() - started


def request(server: ViewerServer, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """The bytes of one HTTP/1.1 request to ``server`` (its own Host unless ``headers`` says otherwise)."""
    fields = {"Host": f"127.0.0.1:{server.server_address[1]}", "Content-Length": str(len(body)), "Connection": "close"} | (headers or {})
    lines = [f"{method} {path} HTTP/1.1", *(f"{key}: {value}" for key, value in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- every path-like parameter stays inside the folder ------------------------------------------------------------
def _refusals(server: ViewerServer, study: str, kspace: str, name: str) -> list[tuple[int, str]]:
    """``(status, error)`` of every path-like parameter set to ``name``."""
    answers = [
        call(server, "GET", f"/api/files?path={name}"),
        call(server, "POST", "/api/studies", {"path": name}),
        call(server, "POST", "/api/studies", {"path": "clean.nii.gz", "reference": name}),
        call(server, "POST", f"/api/studies/{study}/reference", {"path": name}),
        *(call(server, "POST", f"/api/studies/{study}/run", {"operation": operation, "parameters": {"model": name}})
          for operation in ("denoise-mri", "denoise-oct", "superres-nm", "harmonize")),
        call(server, "POST", f"/api/studies/{kspace}/run", {"operation": "recon", "parameters": {"coil_maps": name}}),
    ]  # fmt: skip
    return [(status, payload["error"].replace(name, "NAME")) for status, payload in answers]


def test_every_path_parameter_is_refused_outside_the_folder_alike_whether_or_not_the_file_exists(server: ViewerServer, root: Path) -> None:
    outside = root.parent
    np.save(outside / "maps.npy", np.ones((4, 48, 48), np.complex64))  # a coil-map file outside: never read
    (outside / "weights.pt").write_bytes(b"not a checkpoint")
    os.symlink(outside / "maps.npy", root / "link.npy")  # a link inside pointing outside
    _phantom_kspace(root)
    _, study = call(server, "POST", "/api/studies", {"path": "clean.nii.gz"})
    _, kspace = call(server, "POST", "/api/studies", {"path": "full.npz"})
    studies = len(server.viewer.studies)
    existing = [str(outside / "maps.npy"), "../weights.pt", "../maps.npy", "link.npy", "/etc/passwd"]
    missing = [str(outside / "nothing.npy"), "../nothing.pt", "../nothing.npy", "../../nothing", "/etc/nothing"]
    seen = set()
    for there, absent in zip(existing, missing, strict=True):
        answers = _refusals(server, study["id"], kspace["id"], there)
        assert answers == _refusals(server, study["id"], kspace["id"], absent)  # nothing tells whether a file is there
        assert {status for status, _ in answers} == {403}, answers
        seen |= {error for _, error in answers}
    assert seen == {f"NAME: outside the folder this viewer serves ({root})"}
    assert len(server.viewer.studies) == studies and not list(server.viewer.workdir.glob("*-r*"))  # nothing opened or ran
    # inside the folder the same parameter is the file there (the task's own error for a bad one)
    status, payload = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "denoise-oct", "parameters": {"model": "sub/none.pt"}})
    assert status == 400 and str(root / "sub" / "none.pt") in payload["error"], payload


# -- other sites, other names --------------------------------------------------------------------------------------
def test_requests_from_other_sites_and_names_are_refused(server: ViewerServer) -> None:
    port = server.server_address[1]
    body = json.dumps({"path": "clean.nii.gz"}).encode()
    token = {TOKEN_HEADER: server.token}
    json_type = {"Content-Type": "application/json"}
    attempts = {
        "a cross-site form (text/plain, no token)": ({"Origin": "http://evil.example", "Content-Type": "text/plain"}, 403, "http://evil.example"),
        "a foreign Origin even with the token": ({"Origin": "http://evil.example"} | json_type | token, 403, "refused"),
        "no token": (json_type, 403, TOKEN_HEADER),
        "a wrong token": (json_type | {TOKEN_HEADER: "guess"}, 403, TOKEN_HEADER),
        "text/plain with the token": ({"Content-Type": "text/plain"} | token, 415, "application/json"),
        "another port's Origin": ({"Origin": f"http://127.0.0.1:{port + 1}"} | json_type | token, 403, "refused"),
        "another local name's Origin": ({"Origin": f"http://localhost:{port}"} | json_type | token, 403, "refused"),
        "a DNS-rebound Host": ({"Host": f"attacker.example:{port}"} | json_type | token, 403, "attacker.example"),
        "a rebound Host that looks local": ({"Host": f"localhost.attacker.example:{port}"} | json_type | token, 403, "attacker.example"),
        "another port": ({"Host": f"127.0.0.1:{port + 1}"} | json_type | token, 403, "Host"),
    }
    for name, (headers, expected, message) in attempts.items():
        status, answer, _ = raw(server, request(server, "POST", "/api/studies", body, headers))
        assert (status, message in json.loads(answer)["error"]) == (expected, True), name
    assert server.viewer.studies == {}
    status, answer, _ = raw(server, request(server, "GET", "/api/files", headers={"Host": "attacker.example"}))
    assert status == 403  # reading, too, only under this server's names
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"192.168.0.7:{port}"):  # an IP address cannot be rebound
        headers = {"Host": host, "Origin": f"http://{host}"} | json_type | token
        status, answer, _ = raw(server, request(server, "POST", "/api/studies", body, headers))
        assert status == 201, answer
    status, html, _ = raw(server, request(server, "GET", "/"))
    assert status == 200 and html == page(server.token) and server.token.encode() in html and b"@SESSION_TOKEN@" not in html
    assert ViewerServer(server.viewer, port=0).token != server.token  # a fresh one per server


# -- malformed, stalled and many requests --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (b"POST /api/studies HTTP/1.1\r\nHost: H\r\nContent-Length: -1\r\n\r\n", 400, "Content-Length"),
        (b"POST /api/studies HTTP/1.1\r\nHost: H\r\nContent-Length: abc\r\n\r\n", 400, "Content-Length"),
        (b"POST /api/studies HTTP/1.1\r\nHost: H\r\nContent-Length: 99999999999\r\n\r\n", 413, "at most"),
        (b"POST /api/studies HTTP/1.1\r\nHost: H\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411, "Content-Length"),
        (b"GET /api/files?path=a%00b HTTP/1.1\r\nHost: H\r\n\r\n", 400, "control character"),
        (b"GET /api/files?path=a\x00b HTTP/1.1\r\nHost: H\r\n\r\n", 400, "control character"),
    ],
)
def test_malformed_requests_get_4xx_at_once(server: ViewerServer, data: bytes, status: int, message: str) -> None:
    data = data.replace(b"Host: H", f"Host: 127.0.0.1:{server.server_address[1]}".encode())
    got, body, seconds = raw(server, data)
    assert got == status and message in json.loads(body)["error"]
    assert seconds < 5.0


def test_stalled_clients_are_dropped_and_connections_bounded(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.ViewerHandler, "timeout", 0.5)
    monkeypatch.setattr(app, "MAX_CONNECTIONS", 3)
    small = ViewerServer(Viewer(root, tmp_path / "work"), port=0)
    small.start()
    try:
        half_headers = request(small, "GET", "/api/operations").split(b"\r\n")[0] + b"\r\nHost: 127"  # stops mid-header
        status, _, seconds = raw(small, half_headers)
        assert status == 0 and seconds < 5.0  # closed after the read timeout, not minutes later
        half_body = request(small, "POST", "/api/studies", b'{"path": "clean.nii.gz"}')[:-10]  # stops mid-body
        status, _, seconds = raw(small, half_body)
        assert status in (0, 408) and seconds < 5.0
        small.request_deadline = 1.5
        assert trickle(small, b"GET /api/operations HTTP/1.1\r\nX-Padding: " + b"a" * 100, every=0.2) < 3.0  # each read in time, the whole not
        idle = [socket.create_connection(small.server_address[:2]) for _ in range(3)]
        time.sleep(0.2)
        try:
            status, _, _ = raw(small, request(small, "GET", "/api/operations"))
            assert status == 503  # the three slots are taken
        finally:
            for connection in idle:
                connection.close()
        time.sleep(1.0)
        assert raw(small, request(small, "GET", "/api/operations"))[0] == 200  # and free again
    finally:
        small.shutdown()
        small.server_close()


def test_ten_concurrent_jobs_each_give_their_result(server: ViewerServer) -> None:
    _, study = call(server, "POST", "/api/studies", {"path": "clean.nii.gz"})
    answers: list[tuple[int, Any]] = []

    def run(seed: int) -> None:
        answers.append(call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "degrade-rician", "parameters": {"sigma": 5.0, "seed": seed}}))

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(status for status, _ in answers) == [201] * 10
    assert len({payload["id"] for _, payload in answers}) == 10
    results = server.viewer.studies[study["id"]].results
    by_seed = {payload["parameters"]["seed"]: results[payload["id"]].path for _, payload in answers}
    noise = {seed: nib.load(path).get_fdata() for seed, path in by_seed.items()}
    assert len({float(volume.sum()) for volume in noise.values()}) == 10  # ten different draws, none lost or mixed
    _, jobs = call(server, "GET", f"/api/jobs?study={study['id']}&all=true")
    assert sorted(job["state"] for job in jobs) == ["done"] * 10 and call(server, "GET", "/api/jobs")[1] == []


# -- studies and memory --------------------------------------------------------------------------------------------
def test_studies_are_listed_closed_and_kept_under_the_memory_budget(root: Path, tmp_path: Path) -> None:
    one = image_bytes(Viewer(root, tmp_path / "probe").open("clean.nii.gz").image)
    running = ViewerServer(Viewer(root, tmp_path / "work", memory_budget=2 * one), port=0)
    running.start()
    try:
        first = call(running, "POST", "/api/studies", {"path": "clean.nii.gz"})[1]
        second = call(running, "POST", "/api/studies", {"path": "clean.nii.gz", "reference": "clean.nii.gz"})[1]
        shown = call(running, "GET", f"/api/studies/{first['id']}/slice?axis=1&index=20")[1]
        call(running, "POST", f"/api/studies/{first['id']}/run", {"operation": "degrade-rician", "parameters": {"sigma": 5.0}})
        call(running, "POST", f"/api/studies/{second['id']}/run", {"operation": "degrade-rician", "parameters": {"sigma": 5.0}})
        assert running.viewer.cache.nbytes <= 2 * one  # five images opened, two kept
        assert call(running, "GET", f"/api/studies/{first['id']}/slice?axis=1&index=20")[1] == shown  # read again when shown
        status, listed = call(running, "GET", "/api/studies")
        assert status == 200 and [s["id"] for s in listed] == [first["id"], second["id"]]  # what a reloaded page reopens
        assert listed[1]["reference"]["file"] == "clean.nii.gz" and len(listed[1]["results"]) == 1
        assert call(running, "DELETE", f"/api/studies/{first['id']}") == (200, {"closed": first["id"]})
        assert [s["id"] for s in call(running, "GET", "/api/studies")[1]] == [second["id"]]
        assert call(running, "GET", f"/api/studies/{first['id']}")[0] == 404
        assert all(key[0] != first["id"] for key in running.viewer.cache._images)
    finally:
        running.shutdown()
        running.server_close()


def test_image_cache_drops_the_least_recently_used() -> None:
    images = {name: Image.from_array(np.full((10, 10), i, np.float32)) for i, name in enumerate("abc")}
    cache = ImageCache(budget=2 * 400)
    loads: list[str] = []

    def loader(name: str) -> Any:
        return lambda: loads.append(name) or images[name]

    for name in "ab":
        cache.get(name, loader(name))
    cache.get("a", loader("a"))  # a is now the most recent
    cache.get("c", loader("c"))  # b goes
    assert ("a" in cache, "b" in cache, "c" in cache) == (True, False, True) and loads == ["a", "b", "c"]
    assert cache.get("b", loader("b")) is images["b"] and loads[-1] == "b" and cache.nbytes == 800
    big = ImageCache(budget=0)
    big.put("x", images["a"])
    assert "x" in big  # the image in use stays, even alone over the budget
    with pytest.raises(Exception, match="at least 0 bytes"):
        ImageCache(budget=-1)


# -- metrics -------------------------------------------------------------------------------------------------------
def test_metrics_are_computed_once_per_key(server: ViewerServer, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    real = viewer_module.evaluate_pair

    def counted(*args: Any) -> Any:
        calls.append(args[2:4])
        return real(*args)

    monkeypatch.setattr(viewer_module, "evaluate_pair", counted)
    _, study = call(server, "POST", "/api/studies", {"path": "clean.nii.gz", "reference": "clean.nii.gz"})
    _, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "degrade-rician", "parameters": {"sigma": 5.0}})
    url = f"/api/studies/{study['id']}/metrics?source={result['id']}"
    answers = [call(server, "GET", url) for _ in range(3)] + [call(server, "GET", url + "&masked=true"), call(server, "GET", url + "&convention=fastmri")]
    assert len(calls) == 3 and [c[1] for c in calls] == ["default", "default", "fastmri"]
    assert answers[0] == answers[1] == answers[2]
    path = server.viewer.studies[study["id"]].results[result["id"]].path
    assert answers[0][1] == pytest.approx(evaluate_pair(path, root / "clean.nii.gz", None, "default"), rel=1e-12)
    nib.save(nib.Nifti1Image(0.5 * phantom(), np.diag([1.0, 1.0, 1.2, 1.0])), root / "half.nii.gz")
    call(server, "POST", f"/api/studies/{study['id']}/reference", {"path": "half.nii.gz"})
    _, changed = call(server, "GET", url)
    assert len(calls) == 4 and changed == pytest.approx(evaluate_pair(path, root / "half.nii.gz", None, "default"), rel=1e-12)


def test_single_slice_nifti_is_scored(server: ViewerServer, root: Path) -> None:
    rng = np.random.default_rng(0)
    clean = rng.random((20, 24, 1)).astype(np.float32)
    nib.save(nib.Nifti1Image(clean + 0.05 * rng.standard_normal(clean.shape).astype(np.float32), np.eye(4)), root / "one.nii.gz")
    nib.save(nib.Nifti1Image(clean, np.eye(4)), root / "one-clean.nii.gz")
    status, study = call(server, "POST", "/api/studies", {"path": "one.nii.gz", "reference": "one-clean.nii.gz"})
    assert status == 201
    for masked in ("false", "true"):
        status, metrics = call(server, "GET", f"/api/studies/{study['id']}/metrics?source=input&masked={masked}")
        assert status == 200 and metrics == pytest.approx(evaluate_pair(root / "one.nii.gz", root / "one-clean.nii.gz", None, "default"), rel=1e-9)
    status, png = call(server, "GET", f"/api/studies/{study['id']}/slice")
    assert status == 200 and PILImage.open(io.BytesIO(png)).size in ((20, 24), (24, 20))


# -- long jobs: progress and cancel --------------------------------------------------------------------------------
@pytest.fixture()
def slow_operation(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """An operation ``test-slow`` of 2000 progress-marked steps of 50 ms that writes its output at the end.

    100 s in all: long enough that a test on a loaded machine always reaches Cancel before it ends.
    """
    started = threading.Event()

    def slow(source: Path, output: Path, values: dict[str, Any], reference: Path | None, nonfinite: str) -> dict[str, Any]:
        for _ in track(range(2000), "steps"):
            started.set()
            time.sleep(0.05)
        output.write_bytes(source.read_bytes())
        return {}

    monkeypatch.setitem(OPERATIONS, "test-slow", Operation("test-slow", "slow", "slow", (Parameter("n", "n", "integer", 1),), slow))
    yield started


def test_long_jobs_report_progress_and_can_be_cancelled(server: ViewerServer, slow_operation: threading.Event) -> None:
    _, study = call(server, "POST", "/api/studies", {"path": "clean.nii.gz"})
    answers: dict[str, tuple[int, Any]] = {}
    runs = {name: threading.Thread(target=lambda name=name: answers.setdefault(name, call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "test-slow"})))
            for name in ("first", "second")}  # fmt: skip
    runs["first"].start()
    assert slow_operation.wait(30)
    runs["second"].start()
    time.sleep(0.3)
    _, jobs = call(server, "GET", f"/api/jobs?study={study['id']}")
    running, waiting = jobs
    assert (running["state"], waiting["state"]) == ("running", "waiting")
    assert running["stages"][0]["label"] == "steps" and running["stages"][0]["total"] == 2000 and 0 < running["stages"][0]["done"] < 2000
    assert call(server, "DELETE", f"/api/jobs/{waiting['id']}")[0] == 200  # a waiting job never starts
    assert call(server, "DELETE", f"/api/jobs/{running['id']}")[0] == 200
    for thread in runs.values():
        thread.join(30)
    for name in ("first", "second"):
        status, payload = answers[name]
        assert status == 409 and "cancelled" in payload["error"], name
    assert server.viewer.studies[study["id"]].results == {} and not list(server.viewer.workdir.glob("*test-slow*"))  # no output
    _, jobs = call(server, "GET", f"/api/jobs?study={study['id']}&all=true")
    assert [job["state"] for job in jobs] == ["cancelled", "cancelled"]
    status, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "degrade-rician", "parameters": {"sigma": 1.0}})
    assert status == 201  # the viewer goes on


def test_view_command_memory_budget_option() -> None:
    parser = argparse.ArgumentParser()
    view.add_arguments(parser)
    assert parser.parse_args(["--memory-budget", "64"]).memory_budget == 64
    assert parser.parse_args([]).memory_budget == viewer_module.DEFAULT_MEMORY_BUDGET >> 20
    for bad in ("-1", "lots"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--memory-budget", bad])


def test_ctrl_c_while_a_connection_thread_starts_still_stops_the_server(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C can land while the server waits for a new connection's thread to start (under load, after that thread
    already answered and freed its slot): the interrupt must reach ``serve_forever``, not become another error that
    the server logs and serves on after."""
    served = ViewerServer(Viewer(root, tmp_path / "work"), port=0)
    ours, theirs = socket.socketpair()
    started = socketserver.ThreadingMixIn.process_request

    def interrupted(self: ViewerServer, request: Any, address: Any) -> None:
        started(self, request, address)
        theirs.close()  # the connection ends: its thread finishes and frees its slot
        deadline = time.monotonic() + 10
        while self._slots._value < app.MAX_CONNECTIONS and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        raise KeyboardInterrupt

    monkeypatch.setattr(socketserver.ThreadingMixIn, "process_request", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            served.process_request(ours, ("127.0.0.1", 0))
        assert served._slots._value == app.MAX_CONNECTIONS  # every slot free, none freed twice
    finally:
        served.server_close()
