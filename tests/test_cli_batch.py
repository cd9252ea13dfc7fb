"""Folder mode: several inputs, folders and patterns in, one output per input out, with the same
names and tree; existing outputs skipped; a bad file reported while the rest go on; models loaded
once; the inputs shared among ``torchrun`` processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.fft import fftc
from medrestore.core.image import Image
from medrestore.core.kspace import KSpace
from medrestore.io import read_image, write_image, write_kspace
from medrestore.tasks import denoise as denoise_task
from medrestore.tasks.batch import output_name, shard

DEGRADE = ["--kind", "gaussian", "--sigma", "0.05", "--seed", "1"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``scans/`` with images at two depths, a sidecar and a note (not inputs), and a hidden file."""
    root = tmp_path / "scans"
    rng = np.random.default_rng(0)
    for relative in ("a.npy", "sub/b.npy", "sub/deeper/c.nii.gz"):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        values = rng.uniform(0.5, 1.0, (24, 20)).astype(np.float32)
        if path.suffix == ".npy":
            np.save(path, values)
        else:
            write_image(Image(torch.from_numpy(values), np.diag([0.9, 1.1, 2.0, 1.0]), 2, "mri"), path)
    (root / "a.npy.json").write_text("{}")
    (root / "notes.txt").write_text("not an image")
    np.save(root / ".hidden.npy", np.zeros((4, 4), np.float32))
    return root


def _outputs(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_folder_in_folder_out_mirrors_the_tree(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "noisy"
    assert main(["degrade", str(tree), "-o", str(out), *DEGRADE]) == 0
    assert _outputs(out) == ["a.npy", "a.npy.json", "sub/b.npy", "sub/b.npy.json", "sub/deeper/c.nii.gz", "sub/deeper/c.nii.gz.json"]
    source, degraded = read_image(tree / "sub/deeper/c.nii.gz"), read_image(out / "sub/deeper/c.nii.gz")
    np.testing.assert_allclose(degraded.affine, source.affine)
    assert 0.03 < float((degraded.data - source.data).std()) < 0.07
    log = capsys.readouterr().err
    assert "[1/3] done" in log and "[3/3] done" in log
    assert "done 3, skipped 0, failed 0 of 3 inputs" in log and "2 other files left out" in log


def test_existing_outputs_are_skipped_unless_overwrite(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "noisy"
    assert main(["degrade", str(tree), "-o", str(out), *DEGRADE]) == 0
    stamp = (out / "a.npy").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["degrade", str(tree), "-o", str(out), *DEGRADE]) == 0
    assert "done 0, skipped 3, failed 0" in capsys.readouterr().err
    assert (out / "a.npy").stat().st_mtime_ns == stamp
    assert main(["degrade", str(tree), "-o", str(out), *DEGRADE, "--overwrite"]) == 0
    assert "done 3, skipped 0, failed 0" in capsys.readouterr().err


def test_a_bad_file_is_reported_and_the_rest_go_on(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "sub" / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    out = tmp_path / "noisy"
    assert main(["degrade", str(tree), "-o", str(out), *DEGRADE]) == 1
    log = capsys.readouterr().err
    assert "FAILED  sub/broken.npy:" in log and "broken.npy" in log.split("FAILED")[1].splitlines()[0]
    assert "Traceback" not in log
    assert "done 3, skipped 0, failed 1 of 4 inputs" in log
    assert not (out / "sub" / "broken.npy").exists() and (out / "sub" / "b.npy").exists()


def test_glob_several_inputs_and_output_extension(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "as-nifti"
    assert main(["degrade", "scans/**/*.npy", "-o", str(out), "--output-ext", "nii.gz", *DEGRADE]) == 0
    assert _outputs(out) == ["a.nii.gz", "a.nii.gz.json", "sub/b.nii.gz", "sub/b.nii.gz.json"]
    out2 = tmp_path / "two"
    assert main(["degrade", "scans/a.npy", "scans/sub/deeper/c.nii.gz", "-o", str(out2), *DEGRADE]) == 0
    assert _outputs(out2) == ["a.npy", "a.npy.json", "c.nii.gz", "c.nii.gz.json"]


def test_output_folder_inside_the_input_folder_is_not_walked(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tree / "results"
    assert main(["degrade", str(tree), "-o", str(out), *DEGRADE]) == 0
    capsys.readouterr()
    assert main(["degrade", str(tree), "-o", str(out), *DEGRADE]) == 0
    assert "done 0, skipped 3, failed 0 of 3 inputs" in capsys.readouterr().err


def test_batch_output_must_be_a_folder(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["degrade", str(tree), "-o", str(tree / "a.npy"), *DEGRADE]) == 2
    assert "output folder" in capsys.readouterr().err


def test_dicom_series_folders_are_one_input_each(tmp_path: Path) -> None:
    volume = torch.from_numpy(np.random.default_rng(1).uniform(100, 200, (4, 16, 12)).astype(np.float32))
    root = tmp_path / "study"
    for name in ("t1", "t2"):
        write_image(Image(volume, np.diag([3.0, 0.9, 0.9, 1.0]), 3, "mri"), root / name)
    out = tmp_path / "out"
    assert main(["degrade", str(root), "-o", str(out), *DEGRADE]) == 0
    for name in ("t1", "t2"):
        written, source = read_image(out / name), read_image(root / name)
        assert written.shape == source.shape
        np.testing.assert_allclose(written.affine, source.affine, atol=1e-4)


def test_recon_batch_over_raw_files_writes_nifti_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = torch.zeros(32, 32)
    image[8:24, 8:20] = 1.0
    root = tmp_path / "raw"
    for name in ("one.npz", "deep/two.npz"):
        write_kspace(KSpace(fftc(torch.stack([image, 0.5 * image]).to(torch.complex64)), (32, 32)), root / name)
    out = tmp_path / "images"
    assert main(["recon", str(root), "-o", str(out), "--method", "zero-filled", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["done"], summary["failed"]) == (2, 0)
    assert _outputs(out) == ["deep/two.nii.gz", "deep/two.nii.gz.json", "one.nii.gz", "one.nii.gz.json"]
    assert json.loads((out / "one.nii.gz.json").read_text())["method"] == "zero-filled"
    assert summary["files"][0]["record"]["method"] == "zero-filled"
    assert main(["recon", str(root), "-o", str(out), "--ref", str(root / "one.npz")]) == 2


def test_ranks_share_the_inputs(tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "noisy"
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        monkeypatch.setenv("LOCAL_RANK", rank)
        assert main(["degrade", str(tree), "-o", str(out), *DEGRADE]) == 0
    log = capsys.readouterr().err
    assert "rank 0/2: done 2, skipped 0, failed 0 of 2" in log and "rank 1/2: done 1, skipped 0, failed 0 of 1" in log
    assert len(_outputs(out)) == 6
    assert shard(list(range(5)), 1, 2) == [1, 3]


def test_models_load_once_per_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "bscans"
    root.mkdir()
    for index in range(3):
        np.save(root / f"{index}.npy", np.random.default_rng(index).uniform(0, 255, (32, 40)).astype(np.float32))
    calls: list[str] = []
    original = denoise_task._load_network

    def counting(name: str, modality: str, target: torch.device):  # type: ignore[no-untyped-def]
        calls.append(name)
        return original(name, modality, target)

    monkeypatch.setattr(denoise_task, "_load_network", counting)
    assert main(["denoise", "--modality", "oct", str(root), "-o", str(tmp_path / "out"), "--device", "cpu"]) == 0
    members = len(denoise_task.DEFAULT_MODELS["oct"].split("+"))
    assert len(calls) == members  # once per ensemble member, not once per file
    assert _outputs(tmp_path / "out") == ["0.npy", "0.npy.json", "1.npy", "1.npy.json", "2.npy", "2.npy.json"]
    assert json.loads((tmp_path / "out" / "0.npy.json").read_text())["model"] == denoise_task.DEFAULT_MODELS["oct"]


def test_output_names() -> None:
    assert output_name("brain.nii.gz", ".dcm") == "brain.dcm"
    assert output_name("slice.dcm.gz", ".dcm") == "slice.dcm"
    assert output_name("Lin_X", ".dcm") == "Lin_X.dcm"
    assert output_name("scan.dat", ".nii.gz") == "scan.nii.gz"
    assert output_name("scan.dat", None) == "scan.dat"


def test_single_series_folder_stays_one_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    volume = torch.from_numpy(np.random.default_rng(2).uniform(100, 200, (3, 8, 8)).astype(np.float32))
    series = tmp_path / "series"
    write_image(Image(volume, np.eye(4), 3, "mri"), series)
    assert main(["degrade", str(series), "-o", str(tmp_path / "noisy.nii.gz"), *DEGRADE]) == 0
    assert read_image(tmp_path / "noisy.nii.gz").shape == read_image(series).shape


def test_torchrun_processes_share_a_folder(tree: Path, tmp_path: Path) -> None:
    """Two processes started by the real ``torchrun`` each take their share; together they do every file."""
    import shutil as shell
    import subprocess
    import sys

    torchrun = shell.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    out = tmp_path / "noisy"
    command = [torchrun, "--nproc-per-node=2", "--master-port=0", "-m", "medrestore.cli.main",
               "degrade", str(tree), "-o", str(out), *DEGRADE]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "rank 0/2: done 2" in result.stderr and "rank 1/2: done 1" in result.stderr
    assert len(_outputs(out)) == 6


def test_extensionless_and_gzip_dicom_folders_are_one_series(tmp_path: Path) -> None:
    """DICOM files named by UID (dots, no known extension) and gzip-compressed files without an extension
    form one series input, as read_image reads the folder."""
    import gzip

    from medrestore.io import find_inputs

    volume = torch.from_numpy(np.random.default_rng(3).uniform(100, 200, (3, 8, 8)).astype(np.float32))
    written = tmp_path / "written"
    write_image(Image(volume, np.eye(4), 3, "mri"), written)
    for name, compress in (("uid", False), ("gz", True)):
        series = tmp_path / "study" / name
        series.mkdir(parents=True)
        for index, file in enumerate(sorted(written.iterdir())):
            payload = file.read_bytes()
            (series / f"1.2.826.0.1.{index}").write_bytes(gzip.compress(payload) if compress else payload)
    inventory = find_inputs([tmp_path / "study"], "image")
    assert sorted(str(entry.relative) for entry in inventory.inputs) == ["gz", "uid"]
    assert all(entry.path.is_dir() for entry in inventory.inputs)
