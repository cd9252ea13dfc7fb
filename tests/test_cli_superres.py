"""``medrestore superres --modality nm``: the degrade → superres chain in counts, DICOM NM frames, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.image import Image, affine_from_spacing
from medrestore.core.random import make_generator
from medrestore.data.nm_phantoms import bone_scan_phantom
from medrestore.io import read_image, write_image
from medrestore.metrics import evaluate

from test_nm_dicom import nm_multi_frame_file

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def scintigram(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 256 × 256 bone-scan-like scintigram in counts (NIfTI, 2.4-mm pixels, offset origin)."""
    generator = make_generator(21)
    activity = bone_scan_phantom(256, generator)
    counts = np.random.default_rng(0).poisson(activity * (6e5 / activity.sum())).astype(np.float32)
    image = Image(counts, affine_from_spacing((2.4, 2.4), origin=(-300.0, 100.0)), 2, "nm", {})
    return write_image(image, tmp_path_factory.mktemp("nm") / "scan.nii.gz")


@pytest.fixture(scope="module")
def coarse(scintigram: Path) -> Path:
    output = scintigram.parent / "coarse.nii.gz"
    assert main(["degrade", str(scintigram), "-o", str(output), "--kind", "gamma-camera", "--seed", "1"]) == 0
    return output


def test_default_chain_returns_the_original_count_scale_and_geometry(scintigram: Path, coarse: Path, tmp_path: Path) -> None:
    original = read_image(scintigram)
    scores, records = {}, {}
    for method in ("bicubic", "default", "dct-mlem-ensemble", "dct-mlem", "dct-mlem-resunet", "dct-mlem-vdsr", "mlem", "mlem-vdsr"):
        output = tmp_path / f"{method}.nii.gz"
        arguments = ["superres", "--modality", "nm", str(coarse), "-o", str(output), "--scale", "4"]
        assert main(arguments + ([] if method == "default" else ["--method", method])) == 0
        restored = read_image(output)
        assert restored.shape == (256, 256) and restored.spacing == pytest.approx((2.4, 2.4)) and restored.modality == "nm"
        np.testing.assert_allclose(restored.affine, original.affine, atol=1e-5)  # back on the original grid
        total = float(original.data.double().sum())
        assert abs(float(restored.data.double().sum()) - total) <= 0.01 * total  # the original's counts
        records[method] = json.loads(Path(f"{output}.json").read_text())
        assert records[method]["output_frame_total_counts"][0] == pytest.approx(records[method]["frame_total_counts"][0], rel=1e-6)
        scores[method] = evaluate(restored.data, original.data)
    assert records["default"]["method"] == records["default"]["requested_method"] == "dct-mlem"
    assert records["default"]["model"] is None and records["default"]["refinement_guard"] is None
    default = records["dct-mlem-ensemble"]  # 2.4-mm pixels, a bone scan's counts: inside what the networks learnt
    assert default["refinement_guard"]["networks_applied"] and default["refinement_guard"]["fallback"] is None
    assert default["method"] == "dct-mlem-ensemble" and default["model"] == "nm-dct-mlem-resunet-x4+nm-dct-mlem-vdsr-x4"
    assert default["iterations"] == 40 and default["ensemble_views"] == 2
    assert [len(digest) for digest in default["model_sha256"].split("+")] == [64, 64]
    assert records["dct-mlem"]["ensemble_views"] is None and records["mlem-vdsr"]["ensemble_views"] == 1
    assert records["dct-mlem"]["model"] is None and records["dct-mlem"]["iterations"] == 40 and records["mlem"]["iterations"] == 20
    assert default["system_response"]["pixel_size_mm"] == pytest.approx(2.4) and default["system_response"]["collimator"] == "LEGP"
    assert "degrade record" in default["system_response"]["source"]
    assert records["dct-mlem-vdsr"]["model"] == "nm-dct-mlem-vdsr-x4" and records["dct-mlem-vdsr"]["ensemble_views"] == 2
    assert records["dct-mlem-resunet"]["model"] == "nm-dct-mlem-resunet-x4"
    refined = records["mlem-vdsr"]
    assert refined["model"] == "nm-mlem-vdsr-x4" and len(refined["model_sha256"]) == 64 and refined["iterations"] == 10
    # this scan: ML-EM +1.7 dB / +0.08 SSIM over bicubic, the refinement +1.2 dB / +0.05 (benchmark: bone scans)
    for method in ("default", "dct-mlem-ensemble", "dct-mlem", "dct-mlem-resunet", "dct-mlem-vdsr", "mlem", "mlem-vdsr"):
        assert scores[method]["psnr"] > scores["bicubic"]["psnr"] + 1.0
        assert scores[method]["ssim"] > scores["bicubic"]["ssim"] + 0.03


def test_multi_frame_dicom_nm_keeps_frames_spacing_and_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts = np.random.default_rng(3).poisson(30.0, size=(2, 16, 16)).astype(np.uint16)
    source = nm_multi_frame_file(tmp_path / "windows.dcm", counts, 4.8)
    output = tmp_path / "windows-x4.dcm"
    assert main(["superres", "--modality", "nm", str(source), "-o", str(output), "--method", "mlem"]) == 0
    assert "total counts" in capsys.readouterr().out
    restored = read_image(output)
    assert restored.modality == "nm" and restored.shape == (2, 64, 64)
    assert restored.spacing[1:] == pytest.approx((1.2, 1.2))
    for frame in range(2):
        total = float(counts[frame].sum())
        assert abs(float(restored.data[frame].double().sum()) - total) <= 0.001 * total
    record = json.loads(Path(f"{output}.json").read_text())
    assert record["system_response"]["pixel_size_mm"] == pytest.approx(1.2) and record["iterations"] == 20


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--method", "bicubic", "--model", "nm-srresnet-x4"], "applies to the network methods, not bicubic"),
        (["--method", "mlem", "--ensemble", "8"], "--ensemble applies to the network methods, not mlem"),
        (["--model", "nm-dct-mlem-vdsr-x4"], "--model applies to the network methods, not dct-mlem"),  # the default
        (["--method", "dct-mlem-ensemble", "--ensemble", "3"], "a self-ensemble has 1, 2, 4, 8 views, not 3"),
        (["--method", "mlem-vdsr", "--scale", "2"], "trained for ×4, not ×2"),
        (["--method", "dct-mlem-ensemble", "--scale", "2"], "zoo model 'nm-dct-mlem-resunet-x4' was trained for ×4, not ×2; use --scale 4"),
        (["--method", "dct-mlem-ensemble", "--model", "nm-dct-mlem-vdsr-x4"], "averages 2 networks (dct-mlem-resunet + dct-mlem-vdsr); give as many"),
        (["--method", "dct-mlem", "--scale", "2"], "records a ×4 acquisition; use --scale 4"),
        (["--method", "srresnet", "--model", "no-such-model"], "no pretrained model 'no-such-model'"),
        (["--method", "srresnet", "--model", "nm-srcnn-x4"], "is a srcnn"),
        (["--method", "dct-mlem-ensemble", "--model", "nm-dct-mlem-vdsr-x4+nm-dct-mlem-vdsr-x4"], "is a vdsr; method dct-mlem-resunet needs a resunet"),
        (["--scale", "1"], "scale must be an integer >= 2"),
        (["--collimator", "pinhole"], "unknown collimator"),
        (["--fwhm", "0"], "measured system FWHM must be a finite number of mm > 0, got 0.0"),
        (["--fwhm", "nan"], "measured system FWHM must be a finite number of mm > 0, got nan"),
    ],
)
def test_bad_requests_exit_2(coarse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], options: list[str], message: str) -> None:
    output = tmp_path / "never.nii.gz"
    assert main(["superres", "--modality", "nm", str(coarse), "-o", str(output), *options]) == 2
    error = capsys.readouterr().err
    assert error.startswith("medrestore: error:") and message in error
    assert not output.exists()


def test_bad_pixels_and_overwrites_are_reported_against_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    negative = tmp_path / "ct.npy"
    np.save(negative, np.full((16, 16), -1000.0, dtype=np.float32))
    assert main(["superres", str(negative), "-o", str(tmp_path / "o.npy"), "--method", "bicubic"]) == 2
    error = capsys.readouterr().err
    assert str(negative) in error and "non-negative" in error
    assert main(["superres", str(negative), "-o", str(negative), "--method", "bicubic"]) == 2
    assert "overwrite the input" in capsys.readouterr().err


def test_a_measured_fwhm_replaces_the_collimator_model(scintigram: Path, coarse: Path, tmp_path: Path) -> None:
    """``--fwhm`` is the model's response given in mm: the same output as the collimator and distance it stands for."""
    from medrestore.physics.gamma_camera import PlanarAcquisition

    plain = tmp_path / "plain.nii.gz"  # a copy without the degrade record: the camera comes from the options
    write_image(read_image(coarse), plain)
    lehr = PlanarAcquisition("LEHR", distance_mm=80.0).resolution_mm
    by_model, by_fwhm = tmp_path / "model.nii.gz", tmp_path / "fwhm.nii.gz"
    assert main(["superres", str(plain), "-o", str(by_model), "--collimator", "LEHR", "--distance", "80"]) == 0
    assert main(["superres", str(plain), "-o", str(by_fwhm), "--fwhm", repr(lehr)]) == 0
    assert torch.equal(read_image(by_model).data, read_image(by_fwhm).data)
    model_record = json.loads(Path(f"{by_model}.json").read_text())["system_response"]
    fwhm_record = json.loads(Path(f"{by_fwhm}.json").read_text())["system_response"]
    assert model_record["resolution_source"] == "collimator model" and fwhm_record["resolution_source"] == "measured (given FWHM)"
    assert fwhm_record["resolution_mm"] == pytest.approx(model_record["resolution_mm"]) == pytest.approx(lehr)
    # over a degrade record too: its pixel size is kept, its collimator's response replaced
    recorded = tmp_path / "recorded.nii.gz"
    assert main(["superres", str(coarse), "-o", str(recorded), "--fwhm", "6.0"]) == 0
    record = json.loads(Path(f"{recorded}.json").read_text())["system_response"]
    assert record["resolution_mm"] == 6.0 and record["fwhm_pixels"] == pytest.approx(6.0 / 2.4)
    assert record["source"].startswith("degrade record")


def test_an_intrinsic_chain_restores_slits_to_their_width(tmp_path: Path) -> None:
    """``degrade --collimator INTR`` acquires through the intrinsic resolution alone; ``superres`` reads that from the
    record and gives five 3-mm slits back within 10 % of their width (NEMA NU 1 FWHM), where bicubic doubles it."""
    from medrestore.metrics.nema import line_source_widths

    pixel = 0.6
    x = (torch.arange(400, dtype=torch.float64) + 0.5) * pixel
    sigma = 3.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))
    profile = sum(torch.exp(-0.5 * ((x - centre) / sigma) ** 2) for centre in (30.0, 60.0, 90.0, 120.0, 150.0))
    slits = torch.poisson((200.0 * profile + 4.0)[None, :].expand(320, 400).clone(), generator=make_generator(3))
    original = write_image(Image(slits.to(torch.float32), affine_from_spacing((pixel, pixel)), 2, "nm", {}), tmp_path / "slits.nii.gz")
    coarse, restored, bicubic = (tmp_path / f"{name}.nii.gz" for name in ("coarse", "restored", "bicubic"))
    assert main(["degrade", str(original), "-o", str(coarse), "--kind", "gamma-camera", "--collimator", "none", "--seed", "0"]) == 0
    assert json.loads(Path(f"{coarse}.json").read_text())["degradation"]["collimator"] == "INTR"
    assert main(["superres", str(coarse), "-o", str(restored)]) == 0
    assert main(["superres", str(coarse), "-o", str(bicubic), "--method", "bicubic"]) == 0
    response = json.loads(Path(f"{restored}.json").read_text())["system_response"]
    assert response["collimator"] == "INTR" and response["resolution_mm"] == 3.8
    widths = {path.stem: line_source_widths(read_image(path).data, pixel, lines=5, line_axis=0).mean_fwhm_mm for path in (original, restored, bicubic)}
    assert widths["restored.nii"] == pytest.approx(widths["slits.nii"], rel=0.10)
    assert widths["bicubic.nii"] > 1.5 * widths["slits.nii"]


@pytest.mark.parametrize(("stored", "used", "source"), [
    ("INTR", "INTR", "the file's CollimatorGridName 'INTR'"),
    ("LEHR", "LEHR", "the file's CollimatorGridName 'LEHR'"),
    ("LEAP", "LEGP", "the file's CollimatorGridName 'LEAP'"),
    ("PINHOLE", "LEGP", "default LEGP: the file's CollimatorGridName 'PINHOLE' is not a modelled collimator"),
])  # fmt: skip
def test_the_collimator_a_dicom_file_names_is_the_default(tmp_path: Path, stored: str, used: str, source: str) -> None:
    """Without ``--collimator``, ``degrade`` and ``superres`` use the collimator an NM DICOM names (its detector's
    ``CollimatorGridName``), say so in the sidecar, and fall back to LEGP for a name the model does not know."""
    from medrestore.physics.gamma_camera import PlanarAcquisition

    counts = np.random.default_rng(4).poisson(30.0, size=(1, 64, 64)).astype(np.uint16)
    scan = nm_multi_frame_file(tmp_path / "scan.dcm", counts, 2.0, collimator=stored)
    low = tmp_path / "low.nii.gz"
    assert main(["degrade", str(scan), "-o", str(low), "--kind", "gamma-camera", "--seed", "0"]) == 0
    degraded = json.loads(Path(f"{low}.json").read_text())
    assert degraded["degradation"]["collimator"] == used and degraded["collimator_source"] == source
    restored = tmp_path / "x4.nii.gz"
    assert main(["superres", str(scan), "-o", str(restored)]) == 0
    response = json.loads(Path(f"{restored}.json").read_text())["system_response"]
    assert response["collimator"] == used and response["collimator_source"] == source
    assert response["resolution_mm"] == pytest.approx(PlanarAcquisition(used).resolution_mm)
    given = tmp_path / "given.nii.gz"  # an explicit --collimator wins over the file
    assert main(["superres", str(scan), "-o", str(given), "--collimator", "LEUHR"]) == 0
    response = json.loads(Path(f"{given}.json").read_text())["system_response"]
    assert response["collimator"] == "LEUHR" and "collimator_source" not in response


def test_the_networks_are_not_applied_through_a_collimator_they_did_not_learn(tmp_path: Path) -> None:
    """The refinement networks learnt LEGP's response (7.8–10 mm): a file acquired through LEHR (7.2 mm at 10 cm)
    gets ``dct-mlem``, and the record says why."""
    from test_nm_dicom import nm_multi_frame_file

    counts = np.random.default_rng(9).poisson(800.0, size=(1, 16, 16)).astype(np.uint16)
    records = {}
    for collimator in ("LEGP", "LEHR"):
        source = nm_multi_frame_file(tmp_path / f"{collimator}.dcm", counts, 4.8, collimator=collimator)
        output = tmp_path / f"{collimator}-x4.dcm"
        assert main(["superres", str(source), "-o", str(output), "--method", "dct-mlem-ensemble"]) == 0
        records[collimator] = json.loads(Path(f"{output}.json").read_text())
    assert records["LEGP"]["refinement_guard"]["networks_applied"] and records["LEGP"]["method"] == "dct-mlem-ensemble"
    guard = records["LEHR"]["refinement_guard"]
    assert not guard["networks_applied"] and records["LEHR"]["method"] == "dct-mlem" and guard["fallback"] == "dct-mlem"
    assert guard["reasons"] == ["system response 7.24 mm outside the 7.78-10 mm learnt (LEGP at 80-120 mm)"]
