"""The local web viewer (``medrestore view``): operations, slices, metrics, the HTTP API, the page and the command."""

from __future__ import annotations

import http.client
import io
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from medrestore.core.errors import ConfigError, InputError
from medrestore.core.image import Image
from medrestore.io import read_image, write_image
from medrestore.physics.degradations import DEGRADATION_KINDS
from medrestore.server.app import TOKEN_HEADER, ViewerServer, page
from medrestore.tasks.degrade import degrade_file
from medrestore.tasks.denoise import denoise_file
from medrestore.tasks.evaluate import evaluate_pair
from medrestore.tasks.recon import MaskSpec, ReconOptions, reconstruct_file, undersample_file
from medrestore.tasks.viewer import OPERATIONS, Viewer, display_plane, holds_kspace, output_suffix, window_png
from test_cli_recon import _phantom_kspace


def phantom() -> np.ndarray:
    """A 40 × 44 × 36 two-compartment block (values 100 and 60) in an empty background."""
    volume = np.zeros((40, 44, 36), np.float32)
    volume[8:32, 10:34, 6:30] = 100.0
    volume[14:26, 16:28, 12:24] = 60.0
    return volume


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    folder.mkdir()
    nib.save(nib.Nifti1Image(phantom(), np.diag([1.0, 1.0, 1.2, 1.0])), folder / "clean.nii.gz")
    (folder / "broken.nii.gz").write_bytes(b"this is not a NIfTI file")
    (folder / "sub").mkdir()
    (tmp_path / "outside.nii.gz").write_bytes((folder / "clean.nii.gz").read_bytes())
    return folder


@pytest.fixture()
def server(root: Path, tmp_path: Path) -> Iterator[ViewerServer]:
    running = ViewerServer(Viewer(root, tmp_path / "work"), port=0)
    running.start()
    yield running
    running.shutdown()
    running.server_close()


def call(server: ViewerServer, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
    """``(status, JSON or bytes)`` of one request."""
    data = raw if raw is not None else None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} | ({} if method == "GET" else {TOKEN_HEADER: server.token})  # as the page sends
    request = urllib.request.Request(server.url + path.lstrip("/"), data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            payload, kind, status = response.read(), response.headers["Content-Type"], response.status
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    return status, json.loads(payload) if "json" in kind else payload


# -- operations and their forms ------------------------------------------------------------------------
def test_operations_cover_every_cli_workflow_and_degradation() -> None:
    names = set(OPERATIONS)
    assert {"denoise-mri", "denoise-oct", "superres-nm", "harmonize", "recon"} <= names
    assert [name for name, operation in OPERATIONS.items() if operation.accepts == "kspace"] == ["recon"]
    assert {f"degrade-{kind}" for kind in DEGRADATION_KINDS} <= names
    rician = OPERATIONS["degrade-rician"]
    assert [p.name for p in rician.parameters] == ["sigma", "relative", "seed"]
    assert rician.parse({"sigma": "0.05", "relative": "true"}) == {"sigma": 0.05, "relative": True, "seed": 0}


@pytest.mark.parametrize(
    ("operation", "values", "message"),
    [
        ("degrade-rician", {}, "'sigma' is required"),
        ("degrade-rician", {"sigma": "abc"}, "must be a number"),
        ("degrade-rician", {"sigma": 1, "seed": 2.5}, "must be a finite integer"),
        ("degrade-rician", {"sigma": 1, "colour": 3}, "unknown parameter(s) colour"),
        ("denoise-mri", {"method": "magic"}, "method must be one of auto, nlm"),
        ("degrade-rician", {"sigma": 1, "relative": "maybe"}, "true or false"),
    ],
)
def test_operation_forms_refuse_bad_values(operation: str, values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        OPERATIONS[operation].parse(values)


def test_results_keep_the_input_format() -> None:
    volume = Image.from_array(np.zeros((4, 4, 4), np.float32))
    assert output_suffix(Path("a/brain.nii.gz"), volume) == ".nii.gz"
    assert output_suffix(Path("scan.TIF"), volume) == ".tif"
    assert output_suffix(Path("dicom-series"), volume) == ".nii.gz"
    assert output_suffix(Path("photo.jpg"), Image.from_array(np.zeros((4, 4), np.float32))) == ".tif"


# -- slices --------------------------------------------------------------------------------------------------
def test_display_plane_turns_volumes_like_a_radiological_viewer() -> None:
    array = np.arange(3 * 4 * 5, dtype=np.float32).reshape(3, 4, 5)
    volume = Image.from_array(array)
    np.testing.assert_array_equal(display_plane(volume, 2, 3), np.flipud(array[:, :, 3].T))
    np.testing.assert_array_equal(display_plane(volume, 0, 1), np.flipud(array[1].T))
    np.testing.assert_array_equal(display_plane(volume, 1), np.flipud(array[:, 2, :].T))  # the middle slice
    mirrored = Image.from_array(array, affine=np.diag([-1.0, 1.0, 1.0, 1.0]))  # voxel x runs right to left
    np.testing.assert_array_equal(display_plane(mirrored, 2, 3), np.flipud(array[::-1, :, 3].T))
    np.testing.assert_array_equal(display_plane(mirrored, 0, 0), display_plane(volume, 0, 2))  # counted from the left
    flat = Image.from_array(array[0])
    np.testing.assert_array_equal(display_plane(flat), array[0])
    series = Image(torch.from_numpy(np.stack([array, 2 * array], -1)), np.eye(4), 3)
    np.testing.assert_array_equal(display_plane(series, 2, 3, frame=1), 2 * np.flipud(array[:, :, 3].T))
    with pytest.raises(InputError, match="slice 5 outside 0…4"):
        display_plane(volume, 2, 5)
    with pytest.raises(InputError, match="frame 2 outside"):
        display_plane(series, 2, 0, frame=2)


def test_window_maps_low_high_to_the_grey_range() -> None:
    plane = np.array([[-5.0, 0.0, 25.0], [50.0, 100.0, 400.0]])
    grey = np.asarray(PILImage.open(io.BytesIO(window_png(plane, 0.0, 100.0))))
    np.testing.assert_array_equal(grey, [[0, 0, 64], [128, 255, 255]])


# -- the HTTP API ----------------------------------------------------------------------------------------------
def test_degrade_restore_and_score_through_the_api(server: ViewerServer, root: Path, tmp_path: Path) -> None:
    status, listing = call(server, "GET", "/api/files")
    assert status == 200
    assert [(e["name"], e["folder"]) for e in listing["entries"]] == [("sub", True), ("broken.nii.gz", False), ("clean.nii.gz", False)]
    status, study = call(server, "POST", "/api/studies", {"path": "clean.nii.gz"})
    assert status == 201 and study["shape"] == [40, 44, 36] and study["spacing"][2] == pytest.approx(1.2)
    assert study["window"] == [0.0, 100.0]
    status, noisy = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "degrade-rician", "parameters": {"sigma": 0.05, "relative": True, "seed": 3}})
    assert status == 201, noisy
    status, second = call(server, "POST", f"/api/studies/{study['id']}/results/{noisy['id']}/continue")
    assert status == 201 and second["reference"]["file"] == "clean.nii.gz"  # a degradation's source is the reference
    status, restored = call(server, "POST", f"/api/studies/{second['id']}/run", {"operation": "denoise-mri", "parameters": {"method": "nlm"}})
    assert status == 201, restored
    assert restored["summary"]["method"] == "nlm" and restored["parameters"] == {"method": "nlm", "sigma": "auto"}

    # the same files the commands write
    noisy_path, restored_path = server.viewer.studies[second["id"]].path, server.viewer.studies[second["id"]].results[restored["id"]].path
    degrade_file(root / "clean.nii.gz", tmp_path / "noisy.nii.gz", "rician", {"sigma": 0.05, "relative": True}, seed=3)
    np.testing.assert_array_equal(read_image(noisy_path).numpy(), read_image(tmp_path / "noisy.nii.gz").numpy())
    denoise_file(tmp_path / "noisy.nii.gz", tmp_path / "restored.nii.gz", "mri", method="nlm")
    np.testing.assert_array_equal(read_image(restored_path).numpy(), read_image(tmp_path / "restored.nii.gz").numpy())

    # metrics are `medrestore evaluate`'s, before and after
    for source, path in (("input", tmp_path / "noisy.nii.gz"), (restored["id"], tmp_path / "restored.nii.gz")):
        status, metrics = call(server, "GET", f"/api/studies/{second['id']}/metrics?source={source}")
        assert status == 200
        assert metrics == pytest.approx(evaluate_pair(path, root / "clean.nii.gz", None, "default"), rel=1e-12)
    status, before = call(server, "GET", f"/api/studies/{second['id']}/metrics?source=input&masked=true")
    status, after = call(server, "GET", f"/api/studies/{second['id']}/metrics?source={restored['id']}&masked=true")
    assert after["psnr"] > before["psnr"] + 8.0
    mask = tmp_path / "mask.nii.gz"
    write_image(Image.from_array((phantom() > 0).astype(np.uint8)), mask)
    assert after == pytest.approx(evaluate_pair(tmp_path / "restored.nii.gz", root / "clean.nii.gz", mask, "default"), rel=1e-12)

    # a slice is the windowed plane; a download is the file
    status, png = call(server, "GET", f"/api/studies/{second['id']}/slice?source={restored['id']}&axis=0&index=20&low=0&high=120")
    expected = window_png(display_plane(read_image(restored_path), 0, 20), 0.0, 120.0)
    assert status == 200 and png == expected
    status, body = call(server, "GET", f"/api/studies/{second['id']}/results/{restored['id']}/download")
    assert status == 200 and body == restored_path.read_bytes()
    assert (root / "clean.nii.gz").read_bytes() == (tmp_path / "outside.nii.gz").read_bytes()  # the input is untouched


def test_reference_of_another_shape_gives_no_metrics(server: ViewerServer, root: Path) -> None:
    write_image(Image.from_array(np.ones((8, 8), np.float32)), root / "small.tif")
    _, study = call(server, "POST", "/api/studies", {"path": "clean.nii.gz"})
    status, updated = call(server, "POST", f"/api/studies/{study['id']}/reference", {"path": "small.tif"})
    assert status == 200 and updated["reference"]["file"] == "small.tif"
    assert call(server, "GET", f"/api/studies/{study['id']}/metrics?source=input") == (200, None)
    call(server, "POST", f"/api/studies/{study['id']}/reference", {"path": "clean.nii.gz"})
    status, itself = call(server, "GET", f"/api/studies/{study['id']}/metrics?source=reference")
    assert status == 200 and itself["psnr"] == "inf" and itself["nmse"] == 0.0  # JSON has no infinity
    _, clean_masked = call(server, "GET", f"/api/studies/{study['id']}/metrics?source=input&masked=true")
    half = 0.9 * phantom()
    half[20:] = 0.0  # another support than clean.nii.gz's
    write_image(Image.from_array(half), root / "half.nii.gz")
    write_image(Image.from_array((half > 0).astype(np.uint8)), root / "half-mask.nii.gz")
    call(server, "POST", f"/api/studies/{study['id']}/reference", {"path": "half.nii.gz"})
    _, masked = call(server, "GET", f"/api/studies/{study['id']}/metrics?source=input&masked=true")
    assert clean_masked["psnr"] == "inf"
    assert masked == pytest.approx(evaluate_pair(root / "clean.nii.gz", root / "half.nii.gz", root / "half-mask.nii.gz", "default"))
    status, cleared = call(server, "POST", f"/api/studies/{study['id']}/reference", {"path": None})
    assert status == 200 and cleared["reference"] is None


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", "/api/files?path=..", None, 403, "outside the folder this viewer serves"),
        ("POST", "/api/studies", {"path": "../outside.nii.gz"}, 403, "outside the folder"),
        ("POST", "/api/studies", {"path": "missing.nii.gz"}, 400, "missing.nii.gz: does not exist"),
        ("POST", "/api/studies", {"path": "broken.nii.gz"}, 400, "broken.nii.gz"),
        ("POST", "/api/studies", {"file": "clean.nii.gz"}, 400, "give the image to open"),
        ("GET", "/api/studies/s99", None, 404, "no study 's99'"),
        ("GET", "/api/nothing", None, 404, "no API route"),
    ],
)
def test_bad_requests_get_clear_errors(server: ViewerServer, method: str, path: str, body: Any, status: int, message: str) -> None:
    got, payload = call(server, method, path, body)
    assert got == status
    assert message in payload["error"]


def test_bad_run_requests(server: ViewerServer) -> None:
    _, study = call(server, "POST", "/api/studies", {"path": "clean.nii.gz"})
    run = f"/api/studies/{study['id']}/run"
    assert call(server, "POST", run, {"operation": "teleport"})[1]["error"].startswith("unknown operation 'teleport'")
    status, payload = call(server, "POST", run, raw=b"{not json")
    assert status == 400 and "not JSON" in payload["error"]
    status, payload = call(server, "POST", run, {"operation": "denoise-oct", "parameters": {"model": "no-such-model"}})
    assert status == 400 and "no-such-model" in payload["error"]
    assert call(server, "GET", f"/api/studies/{study['id']}/slice?index=99")[0] == 400
    assert call(server, "GET", f"/api/studies/{study['id']}/results/r9/download")[0] == 404


def test_dicom_series_and_4d_series(server: ViewerServer, root: Path) -> None:
    volume = phantom()[:, :, 10:22] * np.linspace(0.5, 1.0, 40)[:, None, None].astype(np.float32)  # no symmetry to hide a flip
    volume[20:, :22] *= 0.5
    write_image(Image.from_array(volume, spacing=(0.9, 0.9, 2.0), modality="mri"), root / "series/")
    write_image(Image.from_array(volume, spacing=(0.9, 0.9, 2.0), modality="mri"), root / "same.nii.gz")
    status, dicom = call(server, "POST", "/api/studies", {"path": "series"})
    assert status == 201 and dicom["display_shape"] == [40, 44, 12] and dicom["display_spacing"] == pytest.approx([0.9, 0.9, 2.0])
    assert dicom["shape"] != dicom["display_shape"]  # stored slice-first
    _, nifti = call(server, "POST", "/api/studies", {"path": "same.nii.gz"})
    for axis, index in ((0, 7), (1, 30), (2, 4)):  # the same world plane, whatever the voxel order
        query = f"slice?axis={axis}&index={index}&low=0&high=100"
        shown = [np.asarray(PILImage.open(io.BytesIO(call(server, "GET", f"/api/studies/{s['id']}/{query}")[1])), np.int16) for s in (dicom, nifti)]
        assert shown[0].shape == shown[1].shape
        assert np.abs(shown[0] - shown[1]).max() <= 1  # DICOM stores 16-bit integers: a grey level at most
    rng = np.random.default_rng(1)
    series = np.stack([phantom() + rng.normal(0, 4, phantom().shape).astype(np.float32) for _ in range(3)], -1)
    nib.save(nib.Nifti1Image(np.abs(series), np.eye(4)), root / "fmri.nii.gz")
    status, study = call(server, "POST", "/api/studies", {"path": "fmri.nii.gz"})
    assert status == 201 and study["frames"] == 3
    status, png = call(server, "GET", f"/api/studies/{study['id']}/slice?axis=2&index=18&frame=2&low=0&high=100")
    volume = Image(torch.from_numpy(np.abs(series)), np.eye(4), 3)
    assert status == 200 and png == window_png(display_plane(volume, 2, 18, frame=2), 0.0, 100.0)
    status, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "denoise-mri", "parameters": {"method": "nlm", "sigma": "4"}})
    assert status == 201, result
    assert result["frames"] == 3 and result["summary"]["sigma"] == [4.0, 4.0, 4.0]
    assert result["summary"]["tSNR after"] > result["summary"]["tSNR before"]


def test_oct_and_superres_results_equal_the_commands(server: ViewerServer, root: Path, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    bscan = np.clip(rng.normal(120, 30, (64, 96)), 0, 255).astype(np.uint8)
    write_image(Image.from_array(bscan, modality="oct"), root / "bscan.tif")
    _, study = call(server, "POST", "/api/studies", {"path": "bscan.tif"})
    status, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "denoise-oct"})
    assert status == 201, result
    denoise_file(root / "bscan.tif", tmp_path / "oct.tif", "oct")
    got = server.viewer.studies[study["id"]].results[result["id"]].path
    assert got.suffix == ".tif"
    np.testing.assert_array_equal(read_image(got).numpy(), read_image(tmp_path / "oct.tif").numpy())
    status, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "superres-nm", "parameters": {"method": "bicubic", "scale": 2}})
    assert status == 201, result
    assert result["shape"] == [128, 192] and "clipped_negative" not in result["summary"]


def test_signed_scintigram_is_clipped_and_counted_in_the_summary(server: ViewerServer, root: Path) -> None:
    """Negative NM background values: the superres and gamma-camera runs clip them, and the summary says how many."""
    counts = np.random.default_rng(4).poisson(40.0, (32, 32)).astype(np.float32)
    counts[:2] = -5.0
    write_image(Image.from_array(counts, modality="nm"), root / "signed.nii.gz")
    _, study = call(server, "POST", "/api/studies", {"path": "signed.nii.gz"})
    for operation, parameters in (("superres-nm", {"method": "dct-mlem", "scale": 4}), ("degrade-gamma-camera", {})):
        status, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": operation, "parameters": parameters})
        assert status == 201, result
        assert result["summary"]["clipped_negative"] == {"count": 64, "minimum": -5.0}


def test_superres_uses_the_collimator_the_file_names_and_says_so(server: ViewerServer, root: Path) -> None:
    """As the command: an NM DICOM whose detector says ``INTR`` is restored through the intrinsic response."""
    from test_nm_dicom import nm_multi_frame_file

    counts = np.random.default_rng(5).poisson(30.0, size=(1, 32, 32)).astype(np.uint16)
    nm_multi_frame_file(root / "intrinsic.dcm", counts, 2.0, collimator="INTR")
    _, study = call(server, "POST", "/api/studies", {"path": "intrinsic.dcm"})
    status, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "superres-nm", "parameters": {"method": "dct-mlem", "scale": 4}})
    assert status == 201, result
    camera = result["summary"]["camera"]
    assert camera["collimator"] == "INTR" and camera["resolution_mm"] == 3.8
    assert camera["collimator_source"] == "the file's CollimatorGridName 'INTR'"


def test_a_two_view_scintigram_is_acquired_and_restored_view_by_view(server: ViewerServer, root: Path) -> None:
    """An NM file with two detectors (a whole-body scan's anterior and posterior views): both runs keep its frames."""
    from test_cli_degrade_gamma import whole_body_file

    views = np.random.default_rng(6).poisson(30.0, size=(2, 64, 32)).astype(np.int16) - 2
    whole_body_file(root / "views.dcm", views, 2.0)
    _, study = call(server, "POST", "/api/studies", {"path": "views.dcm"})
    axis = study["default_axis"]  # the world axis across the two views: each view opens whole
    assert study["display_shape"][axis] == 2
    status, png = call(server, "GET", f"/api/studies/{study['id']}/slice?axis={axis}&index=1&low=0&high=40")
    assert status == 200 and PILImage.open(io.BytesIO(png)).size == (32, 64)  # a view as the camera stored it
    shown = display_plane(server.viewer.studies[study["id"]].image_of("input"), axis, 1)
    np.testing.assert_array_equal(shown, views[1].astype(np.float64))
    status, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "degrade-gamma-camera", "parameters": {}})
    assert status == 201, result
    assert result["shape"] == [2, 16, 8] and result["summary"]["degradation"]["collimator"] == "LEHR"
    status, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "superres-nm", "parameters": {"method": "dct-mlem", "scale": 4}})
    assert status == 201, result
    assert result["shape"] == [2, 256, 128] and result["summary"]["camera"]["collimator"] == "LEHR"


def test_raw_kspace_opens_zero_filled_and_reconstructs_as_the_command(server: ViewerServer, root: Path, tmp_path: Path) -> None:
    source, reference = _phantom_kspace(root)
    under = root / "under.npz"
    undersample_file(source, under, MaskSpec(kind="poisson", acceleration=3.0, center_fraction=0.25, seed=0))
    assert holds_kspace(under) and not holds_kspace(reference) and not holds_kspace(root / "clean.nii.gz")
    status, study = call(server, "POST", "/api/studies", {"path": "under.npz", "reference": "reference.npy"})
    assert status == 201 and study["kind"] == "kspace" and study["shape"] == [48, 48]
    reconstruct_file(under, tmp_path / "zf.nii.gz", ReconOptions(method="zero-filled", delay_correction="none"))
    shown = server.viewer.studies[study["id"]].image_of("input").numpy()
    np.testing.assert_array_equal(shown, read_image(tmp_path / "zf.nii.gz").numpy())

    status, payload = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "denoise-mri"})
    assert status == 400 and "denoise-mri needs an image; this study is raw k-space" in payload["error"]
    parameters = {"method": "cs-wavelet", "iterations": 30}
    status, result = call(server, "POST", f"/api/studies/{study['id']}/run", {"operation": "recon", "parameters": parameters})
    assert status == 201, result
    report = reconstruct_file(under, tmp_path / "cs.nii.gz", ReconOptions(method="cs-wavelet", iterations=30), reference)
    assert result["summary"]["metrics"] == pytest.approx(report["metrics"], rel=1e-6)
    assert result["summary"]["method"] == "cs-wavelet" and result["file"].endswith(".nii.gz")
    got = server.viewer.studies[study["id"]].results[result["id"]].path
    np.testing.assert_allclose(read_image(got).numpy(), read_image(tmp_path / "cs.nii.gz").numpy(), rtol=1e-5, atol=1e-6 * float(np.abs(shown).max()))
    _, zero_filled = call(server, "GET", f"/api/studies/{study['id']}/metrics?source=input")
    _, restored = call(server, "GET", f"/api/studies/{study['id']}/metrics?source={result['id']}")
    assert restored["psnr"] > zero_filled["psnr"] + 3.0
    _, image_study = call(server, "POST", "/api/studies", {"path": "clean.nii.gz"})
    status, payload = call(server, "POST", f"/api/studies/{image_study['id']}/run", {"operation": "recon"})
    assert status == 400 and "recon needs raw k-space" in payload["error"]


# -- the page ------------------------------------------------------------------------------------------------------
def script_of_page() -> str:
    html = page().decode()
    return html[html.index("<script>") + len("<script>") : html.index("</script>")]


def test_page_elements_the_script_uses_exist(server: ViewerServer) -> None:
    status, body = call(server, "GET", "/")
    assert status == 200 and body == page(server.token)
    html = body.decode()
    used = set(re.findall(r'\$\("([\w-]+)"\)', script_of_page()))
    assert {"stage", "split", "img-before", "img-after", "metrics", "run", "params"} <= used
    missing = sorted(name for name in used if f'id="{name}"' not in html)
    assert missing == []
    assert "http://" not in html and "https://" not in html  # nothing is fetched from elsewhere


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_page_script_parses(tmp_path: Path) -> None:
    script = tmp_path / "viewer.js"
    script.write_text(script_of_page())
    checked = subprocess.run(["node", "--check", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# -- the command ---------------------------------------------------------------------------------------------------
def _default_interrupt() -> None:
    """In the child before it starts: Ctrl-C's signal back to its default, since a job started in the background
    by a shell without job control inherits it ignored (and Python then installs no KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_view_command_serves_and_stops(root: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "medrestore.cli.main", "view", str(root / "clean.nii.gz"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_interrupt,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.match(r"medrestore viewer at (http://127\.0\.0\.1:\d+/)\?study=s1 \(files of (.+); Ctrl-C to stop\)", line)
        assert match, line
        assert Path(match.group(2)) == root.resolve()
        with urllib.request.urlopen(match.group(1) + "api/studies/s1", timeout=30) as response:
            assert json.loads(response.read())["file"] == "clean.nii.gz"
    finally:
        process.send_signal(signal.SIGINT)
        output, errors = process.communicate(timeout=30)
    assert process.returncode == 0, errors
    assert "medrestore viewer stopped" in output


def test_view_command_stops_on_sigterm_while_a_browser_holds_a_connection(root: Path) -> None:
    """``kill`` (SIGTERM) stops the viewer as Ctrl-C does, removing its temporary work folder, and does not wait for
    the HTTP/1.1 connection a browser keeps open after a page."""
    process = subprocess.Popen(
        [sys.executable, "-m", "medrestore.cli.main", "view", "--root", str(root), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    earlier = set(Path(tempfile.gettempdir()).glob("medrestore-view-*"))
    connection = None
    try:
        assert process.stdout is not None
        match = re.match(r"medrestore viewer at http://127\.0\.0\.1:(\d+)/", process.stdout.readline())
        assert match
        connection = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=30)
        connection.request("GET", "/api/operations")  # HTTP/1.1, keep-alive: the socket stays open afterwards
        response = connection.getresponse()
        assert response.status == 200 and response.getheader("Connection", "keep-alive").lower() != "close"
        response.read()
        own = set(Path(tempfile.gettempdir()).glob("medrestore-view-*")) - earlier
    finally:
        process.send_signal(signal.SIGTERM)
        output, errors = process.communicate(timeout=30)
        if connection is not None:
            connection.close()
    assert process.returncode == 0, errors
    assert "medrestore viewer stopped" in output
    assert own and not any(path.exists() for path in own)  # its work folder went with it
