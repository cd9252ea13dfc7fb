"""No command writes over its input: outputs resolving to an input (directly, through symlinks, hard
links, relative paths, BART pairs or DICOM folders) are refused before any work; unwritable output
folders are refused before computing; partial files of killed writes are removed by the next write."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import _terminate, main
from medrestore.core.errors import InputError
from medrestore.core.files import atomic_path, guard_output, partial_name, remove_stale_partials
from medrestore.core.fft import fftc
from medrestore.core.kspace import KSpace
from medrestore.io import write_kspace
from medrestore.io.raw_bart import write_cfl


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def kspace_file(tmp_path: Path) -> Path:
    image = torch.zeros(32, 32)
    image[8:24, 10:22] = 1.0
    data = fftc(torch.stack([image, 0.5 * image]).to(torch.complex64))
    return write_kspace(KSpace(data, (32, 32)), tmp_path / "k.npz")


@pytest.fixture
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "image.npy"
    np.save(path, np.random.default_rng(0).uniform(1.0, 2.0, (32, 32)).astype(np.float32))
    return path


COMMANDS = {
    "recon": ["recon", "{k}", "-o", "{out}", "--method", "zero-filled"],
    "undersample": ["undersample", "{k}", "-o", "{out}", "--accel", "2", "--mask", "equispaced"],
    "simulate-radial": ["simulate-radial", "{image}", "-o", "{out}", "--spokes", "8"],
    "degrade": ["degrade", "{image}", "-o", "{out}", "--kind", "gaussian", "--sigma", "0.1"],
    "denoise": ["denoise", "--modality", "mri", "{image}", "-o", "{out}", "--method", "nlm", "--sigma", "0.1"],
    "superres": ["superres", "{image}", "-o", "{out}", "--method", "bicubic"],
    "harmonize": ["harmonize", "{image}", "-o", "{out}", "--model", "histogram"],
}


def _argv(command: str, kspace: Path, image: Path, out: Path) -> list[str]:
    return [word.format(k=kspace, image=image, out=out) for word in COMMANDS[command]]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_refuses_its_input_as_output(
    command: str, kspace_file: Path, image_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = kspace_file if command in ("recon", "undersample") else image_file
    before = _digest(source)
    assert main(_argv(command, kspace_file, image_file, source)) == 2
    error = capsys.readouterr().err
    assert "would overwrite the input" in error and str(source) in error
    assert _digest(source) == before


@pytest.mark.parametrize("command", ["recon", "degrade"])
def test_refused_before_any_work(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A corrupt input given as its own output: the overwrite is reported, not the corrupt bytes
    (so nothing was read), and the file is unchanged."""
    source = tmp_path / ("broken.npz" if command == "recon" else "broken.npy")
    source.write_bytes(b"not really data")
    assert main(_argv(command, source, source, source)) == 2
    assert "would overwrite the input" in capsys.readouterr().err
    assert source.read_bytes() == b"not really data"


def test_symlink_relative_path_and_hard_link_are_the_input(
    kspace_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _digest(kspace_file)
    link = tmp_path / "link.npz"
    link.symlink_to(kspace_file)
    hard = tmp_path / "hard.npz"
    os.link(kspace_file, hard)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    for output in (str(link), "../k.npz", str(hard)):
        assert main(["recon", str(kspace_file), "-o", output, "--method", "zero-filled"]) == 2
        assert "would overwrite the input" in capsys.readouterr().err
    assert _digest(kspace_file) == before


def test_bart_pair_and_dicom_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = torch.zeros(16, 16, dtype=torch.complex64)
    image[4:12, 4:12] = 1
    stem = write_cfl(fftc(torch.stack([image, image])).numpy()[:, None], tmp_path / "bart")
    before = _digest(stem.with_suffix(".cfl"))
    for output in ("bart.hdr", "bart.cfl", "bart"):
        assert main(["undersample", str(stem.with_suffix(".cfl")), "-o", str(tmp_path / output), "--accel", "2"]) == 2
        assert "would overwrite the input" in capsys.readouterr().err
    assert _digest(stem.with_suffix(".cfl")) == before
    series = tmp_path / "series"
    series.mkdir()
    (series / "0001.dcm").write_bytes(b"x")
    with pytest.raises(InputError, match="inside the input folder"):
        guard_output(series / "out.nii.gz", [series])
    with pytest.raises(InputError, match="would overwrite the input"):
        guard_output(series, [series])
    with pytest.raises(InputError, match="holding the input"):
        guard_output(tmp_path, [series / "0001.dcm"])


def test_sidecar_may_not_be_an_input(image_file: Path, tmp_path: Path) -> None:
    record = tmp_path / "out.nii.gz.json"
    record.write_text("{}")
    with pytest.raises(InputError, match="would overwrite the input"):
        guard_output(tmp_path / "out.nii.gz", [image_file, record], sidecar=True)
    guard_output(tmp_path / "out.nii.gz", [image_file, record])  # no sidecar written: fine


def test_output_folder_that_cannot_exist_is_refused_before_computing(image_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocked = image_file.parent / "a-file"
    blocked.write_text("in the way")
    assert main(["degrade", str(image_file), "-o", str(blocked / "out.npy"), "--kind", "gaussian", "--sigma", "1"]) == 2
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="permission bits do not stop root: the read-only folder case needs a normal user")
def test_read_only_output_folder(image_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    with pytest.raises(InputError, match="not writable"):
        guard_output(folder / "out.npy", [image_file])


def test_stale_partials_of_dead_writers_are_removed(tmp_path: Path) -> None:
    destination = tmp_path / "out.nii.gz"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = partial_name(destination).replace(f"-{os.getpid()}-", f"-{int(finished.stdout)}-") + "abc.nii.gz"
    alive = partial_name(destination) + "def.nii.gz"  # this process: a write in progress
    foreign = f".{destination.name}.partial-otherhost-1-ghi.nii.gz"
    for name in (dead, alive, foreign):
        (tmp_path / name).write_bytes(b"half")
    with atomic_path(destination) as temporary:
        assert temporary.name.startswith(partial_name(destination))
        temporary.write_bytes(b"whole")
    assert destination.read_bytes() == b"whole"
    assert not (tmp_path / dead).exists()
    assert (tmp_path / alive).exists() and (tmp_path / foreign).exists()
    old = (tmp_path / foreign).stat().st_mtime - 2 * 24 * 3600
    os.utime(tmp_path / foreign, (old, old))
    assert tmp_path / foreign in remove_stale_partials(destination)


def test_killed_write_leaves_a_partial_the_next_write_removes(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-write leaves its partial file; the next write of that output removes it."""
    destination = tmp_path / "volume.npy"
    script = (
        "import os, signal, sys\n"
        "from medrestore.core.files import atomic_path\n"
        f"with atomic_path({str(destination)!r}) as t:\n"
        "    t.write_bytes(b'half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False)
    leftovers = [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert len(leftovers) == 1 and not destination.exists()
    with atomic_path(destination) as temporary:
        temporary.write_bytes(b"whole")
    assert [p.name for p in tmp_path.iterdir()] == ["volume.npy"]


def test_sigterm_is_an_interrupt() -> None:
    with pytest.raises(KeyboardInterrupt):
        _terminate(15, None)


def test_a_killed_dicom_series_write_is_cleaned_by_the_next(tmp_path: Path) -> None:
    """The series writer builds its folder under a partial name too; a dead writer's folder goes on the next write."""
    from medrestore.core.image import Image
    from medrestore.io import write_image

    destination = tmp_path / "series"
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    leftover = tmp_path / (partial_name(destination).replace(f"-{os.getpid()}-", f"-{int(finished.stdout)}-") + "abcdef")
    leftover.mkdir()
    (leftover / "0001.dcm").write_bytes(b"half")
    write_image(Image(torch.rand(3, 8, 8) * 100, np.eye(4), 3, "mri"), destination)
    assert not leftover.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["series"]


def test_an_output_beside_a_bart_input_is_not_the_input(tmp_path: Path) -> None:
    """``brain.cfl`` in, ``brain.npy`` out: another file, not the BART pair."""
    stem = write_cfl(np.ones((2, 1, 8, 8), np.complex64), tmp_path / "brain")
    guard_output(tmp_path / "brain.npy", [stem.with_suffix(".cfl")])
    guard_output(tmp_path / "brain.nii.gz", [stem])
    with pytest.raises(InputError, match="would overwrite the input"):
        guard_output(tmp_path / "brain", [stem.with_suffix(".cfl")])
