"""``medrestore report``: the summary's scores are ``medrestore evaluate``'s, the figures are in the HTML,
records' decisions are shown, and bad input is refused with the file named."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from medrestore.cli.main import main
from medrestore.core.errors import InputError
from medrestore.core.files import sha256_file
from medrestore.core.image import Image
from medrestore.data.phantoms import shepp_logan
from medrestore.io import write_image
from medrestore.tasks.report import record_decisions, report_files

PNG_DATA = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(Image.from_array(torch.from_numpy(array.astype(np.float32))), path)
    return path


@pytest.fixture()
def pair(tmp_path: Path) -> dict[str, Path]:
    """A clean phantom, a noisy input and a 'restored' output (a milder noise) as NIfTI."""
    clean = shepp_logan(64)
    generator = np.random.default_rng(3)
    noisy = clean + 0.1 * generator.standard_normal(clean.shape)
    restored = clean + 0.03 * generator.standard_normal(clean.shape)
    return {
        "clean": _write(tmp_path / "clean" / "slice.nii.gz", clean),
        "noisy": _write(tmp_path / "noisy" / "slice.nii.gz", noisy),
        "restored": _write(tmp_path / "restored" / "slice.nii.gz", restored),
    }


def _summary_row(html: str, label: str) -> list[str]:
    table = html[html.index('<section id="summary">') : html.index("</section>")]
    row = next(r for r in re.findall(r"<tr>(.*?)</tr>", table) if f"<td>{label}</td>" in r)
    return re.findall(r"<td>(.*?)</td>", row)


def test_psnr_is_evaluates_and_the_figure_is_embedded(pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {name: sha256_file(path) for name, path in pair.items()}
    html_path = tmp_path / "report.html"
    assert main(["report", str(pair["restored"]), "--reference", str(pair["clean"]), "--input", str(pair["noisy"]), "-o", str(html_path)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--pred", str(pair["restored"]), "--reference", str(pair["clean"]), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)["metrics"]
    assert main(["evaluate", "--pred", str(pair["noisy"]), "--reference", str(pair["clean"]), "--json"]) == 0
    evaluated_input = json.loads(capsys.readouterr().out)["metrics"]

    html = html_path.read_text()
    cells = _summary_row(html, "slice.nii.gz")
    assert cells[1] == "64×64"
    assert float(cells[3]) == pytest.approx(evaluated["psnr"], abs=0.005)  # shown with 2 decimals
    assert float(cells[4]) == pytest.approx(evaluated["ssim"], abs=5e-5)
    assert float(cells[5]) == pytest.approx(evaluated_input["psnr"], abs=0.005)
    assert evaluated["psnr"] > evaluated_input["psnr"] + 8.0  # σ 0.1 → 0.03: about 10.5 dB

    images = PNG_DATA.findall(html)
    assert len(images) == 1  # one figure per file, embedded: the report is one file
    with PILImage.open(io.BytesIO(base64.b64decode(images[0]))) as picture:
        assert picture.format == "PNG" and picture.size[0] > 3 * picture.size[1] > 600  # input, output, reference, difference
    assert {name: sha256_file(path) for name, path in pair.items()} == before  # inputs untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report.html")]  # no partial file left


def test_closed_form_psnr_and_folders_matched_by_name(tmp_path: Path) -> None:
    """Outputs off the reference by a constant 0.1: PSNR = 20 log10(range / 0.1) (range: the reference's), for every file of a folder."""
    clean = shepp_logan(48).astype(np.float32)
    expected = 20.0 * np.log10(float(clean.max() - clean.min()) / 0.1)
    for name in ("a.nii.gz", "b.nii.gz"):
        _write(tmp_path / "ref" / name, clean)
        _write(tmp_path / "out" / name, clean + 0.1)
    result = report_files([tmp_path / "out"], tmp_path / "r.html", [tmp_path / "ref"])
    assert [entry["file"] for entry in result["files"]] == ["a.nii.gz", "b.nii.gz"]
    for entry in result["files"]:
        assert entry["metrics"]["psnr"] == pytest.approx(expected, abs=1e-4)
        assert entry["reference"] == str(tmp_path / "ref" / entry["file"])
    assert len(PNG_DATA.findall((tmp_path / "r.html").read_text())) == 2


def test_without_reference_a_glob_and_the_records_decisions(tmp_path: Path) -> None:
    clean = shepp_logan(32)
    output = _write(tmp_path / "out" / "x.nii.gz", clean)
    _write(tmp_path / "out" / "y.nii.gz", clean)
    record = {"method": "cs-wavelet", "auto_decision": "undersampled Cartesian: L1-wavelet CS", "lambda_selection": {"chosen": 0.01},
              "refinement_guard": None}  # fmt: skip
    Path(f"{output}.json").write_text(json.dumps(record))
    result = report_files([str(tmp_path / "out" / "*.nii.gz")], tmp_path / "r.html")
    first, second = result["files"]
    assert first["method"] == "cs-wavelet" and first["metrics"] is None
    assert first["decisions"] == {"auto_decision": "undersampled Cartesian: L1-wavelet CS", "lambda_selection": '{"chosen": 0.01}'}
    assert second["method"] is None and second["decisions"] == {}
    html = (tmp_path / "r.html").read_text()
    assert "auto_decision: undersampled Cartesian" in html and "<summary>record</summary>" in html


def test_record_of_a_degradation_names_its_kind() -> None:
    method, decisions = record_decisions({"degradation": {"kind": "rician", "sigma": 0.05}, "clipped_negative": 12})
    assert method == "rician" and decisions == [("clipped_negative", "12")]


def test_refusals_name_the_file(pair: dict[str, Path], tmp_path: Path) -> None:
    other = _write(tmp_path / "other.nii.gz", np.zeros((32, 32)))
    with pytest.raises(InputError, match="other.nii.gz.*does not match"):
        report_files([other], tmp_path / "r.html", [pair["clean"]])
    with pytest.raises(InputError, match=r"other.nii.gz.*no reference of the same name in .*clean"):
        report_files([other], tmp_path / "r.html", [pair["clean"].parent])
    with pytest.raises(InputError, match=r"clean/slice.nii.gz: 2 reference file\(s\) for 1 output"):
        report_files([pair["restored"]], tmp_path / "r.html", [pair["clean"], pair["noisy"]])
    with pytest.raises(InputError, match="missing.nii.gz.*no such file"):
        report_files([tmp_path / "missing.nii.gz"], tmp_path / "r.html")
    with pytest.raises(InputError, match="refusing to write"):
        report_files([pair["restored"]], pair["clean"], [pair["clean"]])
    Path(f"{pair['restored']}.json").write_text("{not json")
    with pytest.raises(InputError, match=r"slice.nii.gz.json.*not valid JSON"):
        report_files([pair["restored"]], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_cli_error_names_the_file(pair: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(pair["restored"]), "--ref", str(tmp_path / "nope.nii.gz"), "-o", str(tmp_path / "r.html")]) == 2
    assert "nope.nii.gz" in capsys.readouterr().err


def test_an_input_on_a_coarser_grid_is_shown_but_not_scored(tmp_path: Path) -> None:
    """A super-resolution input (half the size) is shown beside the output; only same-shape inputs are scored."""
    clean = shepp_logan(64)
    coarse = _write(tmp_path / "coarse.nii.gz", clean.reshape(32, 2, 32, 2).sum(axis=(1, 3)))
    output = _write(tmp_path / "out.nii.gz", clean + 0.01)
    reference = _write(tmp_path / "ref.nii.gz", clean)
    entry = report_files([output], tmp_path / "r.html", [reference], [coarse])["files"][0]
    assert entry["input_metrics"] is None and entry["metrics"]["psnr"] > 35.0
    (image,) = PNG_DATA.findall((tmp_path / "r.html").read_text())
    with PILImage.open(io.BytesIO(base64.b64decode(image))) as picture:
        assert picture.size[0] > 3 * picture.size[1]
