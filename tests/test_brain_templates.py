"""``benchmarks/brain_templates.py``: volumes pinned by package and member, fetched with pip from a local index."""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import sys
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medrestore.core.errors import InputError

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "brain_templates.py"
spec = importlib.util.spec_from_file_location("brain_templates", SCRIPT)
assert spec is not None and spec.loader is not None
templates = importlib.util.module_from_spec(spec)
sys.modules["brain_templates"] = templates  # dataclasses look their module up there
spec.loader.exec_module(templates)


def nifti_bytes(data: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(data, affine).to_bytes())


def make_wheel(folder: Path, name: str, version: str, members: dict[str, bytes]) -> Path:
    """A minimal valid wheel of ``name==version`` holding ``members``."""
    info = f"{name}-{version}.dist-info"
    files = {
        **members,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{info}/RECORD"]).encode()
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for member, payload in files.items():
            wheel.writestr(member, payload)
    return path


def write_simple_index(root: Path, wheels: list[Path]) -> None:
    """A PEP 503 simple index of ``wheels`` (which lie in ``root``) under ``root/simple``."""
    for wheel in wheels:
        project = root / "simple" / wheel.name.split("-")[0].replace("_", "-")
        project.mkdir(parents=True, exist_ok=True)
        (project / "index.html").write_text(f'<html><body><a href="../../{wheel.name}">{wheel.name}</a></body></html>')


def test_fetch_downloads_with_pip_from_a_local_index_extracts_and_clips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, serve_directory: Callable[[Path], str]
) -> None:
    rng = np.random.default_rng(0)
    brain = rng.uniform(1.0, 100.0, (12, 10, 8)).astype(np.float32)
    brain[0, 0, 0] = 1000.0  # one bright outlier: clipping brings the maximum to the 99.9th percentile
    affine = np.diag([1.0, 1.0, 1.2, 1.0])
    served = tmp_path / "served"
    served.mkdir()
    wheel = make_wheel(served, "fakebrain", "1.0", {"fakebrain/data/brain.nii.gz": nifti_bytes(brain, affine)})
    volume = templates.BrainVolume("fake", "fakebrain==1.0", "fakebrain/data/brain.nii.gz", "validation", "test", clip=True)
    monkeypatch.setattr(templates, "VOLUMES", (volume,))
    for variable in [v for v in os.environ if v.startswith("PIP_")]:
        monkeypatch.delenv(variable)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no extra indexes or links from the machine's pip.conf
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    write_simple_index(served, [wheel])
    written = templates.fetch(["validation"], tmp_path / "out", tmp_path / "cache", serve_directory(served) + "simple")
    assert written == [tmp_path / "out" / "fake.nii.gz"]
    assert (tmp_path / "cache" / "fakebrain==1.0" / wheel.name).read_bytes() == wheel.read_bytes()
    image = nib.load(written[0])
    data = np.asarray(image.dataobj)
    expected = np.minimum(brain, np.float32(np.quantile(brain, templates.CLIP_QUANTILE)))
    np.testing.assert_array_equal(data, expected)
    assert data.max() < 1000.0 and np.allclose(image.affine, affine)
    # the archive in the cache is reused: no index is needed the second time
    assert templates.fetch(["validation"], tmp_path / "again", tmp_path / "cache", "http://127.0.0.1:9/simple") == [tmp_path / "again" / "fake.nii.gz"]
    assert templates.fetch(["training"], tmp_path / "none", tmp_path / "cache") == []


def test_4dfp_volumes_are_read_x_fastest_on_the_conformed_grid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templates, "FOURDFP_SIDE", 3)
    raw = np.arange(27, dtype="<f4")
    volume = templates.BrainVolume("w", "p==1", "a.4dfp.img", "training", "test", kind="4dfp")
    data, affine = templates.load_volume(volume, raw.tobytes())
    i, j, k = 2, 0, 1
    assert data.shape == (3, 3, 3) and data[i, j, k] == raw[k * 9 + j * 3 + i]
    np.testing.assert_array_equal(affine, templates.CONFORMED_LIA)
    with pytest.raises(InputError, match="a.4dfp.img"):
        templates.load_volume(volume, raw[:-1].tobytes())


def test_members_are_read_from_wheels_and_sdists_and_missing_ones_are_named(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "pkg", "2.0", {"pkg/a.bin": b"wheel bytes"})
    assert templates.read_member(wheel, "pkg/a.bin") == b"wheel bytes"
    sdist = tmp_path / "pkg-2.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        info = tarfile.TarInfo("pkg-2.0/pkg/b.bin")
        info.size = 11
        archive.addfile(info, io.BytesIO(b"sdist bytes"))
    assert templates.read_member(sdist, "pkg-2.0/pkg/b.bin") == b"sdist bytes"
    for archive, member in ((wheel, "pkg/missing"), (sdist, "pkg-2.0/missing")):
        with pytest.raises(InputError, match="has no member"):
            templates.read_member(archive, member)


def test_the_pinned_volumes_keep_training_validation_and_icbm152_apart() -> None:
    roles = {v.role for v in templates.VOLUMES}
    assert roles == {"training", "validation"}
    assert all(v.clip == (v.role == "validation") for v in templates.VOLUMES)
    assert not any("icbm" in (v.package + v.member).lower() or "mni152" in (v.package + v.member).lower() for v in templates.VOLUMES)
    config = (Path(__file__).resolve().parents[1] / "configs" / "mri-resunet3d-multibrain.yaml").read_text()
    training = sorted(v.name for v in templates.VOLUMES if v.role == "training")
    assert sorted(line.split("/")[-1].removesuffix(".nii.gz") for line in config.splitlines() if "brain-templates/" in line and line.strip().startswith("-")) == training
