"""Harmonisation data: subject splits, simulated dataset layout, folder readers, IXI organiser and download."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from medrestore.cli.main import main
from medrestore.core.errors import ConfigError, InputError, MedrestoreError
from medrestore.core.image import Image
from medrestore.data.harmonize import (
    SimulationPlan,
    UnpairedSlices,
    read_folder_slices,
    read_paired_folders,
    split_subjects,
    subject_of,
    write_simulated_dataset,
)
from medrestore.data.ixi import download_archives, organise_ixi, parse_ixi_name
from medrestore.io import read_image, write_image

torch.set_num_threads(1)
COLIN27 = Path(__file__).resolve().parents[2] / "shared" / "data" / "brain-mri-ants" / "ch2.nii.gz"


def test_subject_of_reads_the_prefix() -> None:
    assert subject_of("subj003_slice040.nii.gz") == "subj003"
    assert subject_of("/x/IXI012-HH-1211-T1.nii.gz") == "IXI012"
    assert subject_of("patient7_a.nii") == "patient7"


def test_split_subjects_is_disjoint_complete_and_seeded() -> None:
    subjects = [f"subj{i:03d}" for i in range(20)]
    splits = split_subjects(subjects * 3, (0.6, 0.15, 0.25), seed=4)
    members = [set(splits[name]) for name in ("train", "val", "test")]
    assert set.union(*members) == set(subjects) and sum(map(len, members)) == 20
    assert (len(members[0]), len(members[1]), len(members[2])) == (12, 3, 5)
    assert splits == split_subjects(subjects, (0.6, 0.15, 0.25), seed=4)
    assert splits != split_subjects(subjects, (0.6, 0.15, 0.25), seed=5)
    with pytest.raises(ConfigError, match="sum"):
        split_subjects(subjects, (0.5, 0.2, 0.2), seed=0)


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not COLIN27.is_file():
        pytest.skip(f"shared brain data not found at {COLIN27}")
    root = tmp_path_factory.mktemp("harmonize-sim")
    write_simulated_dataset(COLIN27, root, SimulationPlan(subjects=4, slices_per_subject=2, size=48, fractions=(0.5, 0.25, 0.25)))
    return root


def test_simulated_dataset_layout_and_subject_splits(simulated: Path) -> None:
    manifest = json.loads((simulated / "manifest.json").read_text())
    splits = manifest["splits"]
    assert sorted(sum(splits.values(), [])) == [f"subj{i:03d}" for i in range(4)]
    for split, members in splits.items():
        names = sorted(p.name for p in (simulated / "paired" / split / "a").iterdir())
        assert {subject_of(n) for n in names} == set(members) and len(names) == 2 * len(members)
        assert names == sorted(p.name for p in (simulated / "paired" / split / "b").iterdir())
    unpaired_a = {subject_of(p) for p in (simulated / "unpaired" / "train" / "a").iterdir()}
    unpaired_b = {subject_of(p) for p in (simulated / "unpaired" / "train" / "b").iterdir()}
    assert unpaired_a and unpaired_b and not unpaired_a & unpaired_b
    assert manifest["scanners"]["b"]["hyperintensity"] > 0 == manifest["scanners"]["a"]["hyperintensity"]


def test_simulated_slices_are_float_and_paired(simulated: Path) -> None:
    names, slices_a, slices_b = read_paired_folders(simulated / "paired" / "train" / "a", simulated / "paired" / "train" / "b")
    image = read_image(simulated / "paired" / "train" / "a" / names[0])
    assert image.metadata["dtype"] == "float32" and slices_a.shape == (len(names), 48, 48)
    # same anatomy: strongly correlated; different scanners: not equal
    correlation = np.corrcoef(slices_a.flatten().numpy(), slices_b.flatten().numpy())[0, 1]
    assert 0.85 < correlation < 0.9999


def test_unpaired_dataset_items_are_deterministic() -> None:
    a, b = torch.rand(5, 8, 8), torch.rand(3, 8, 8)
    dataset = UnpairedSlices(a, b, seed=1)
    first = dataset[2]
    assert first[0].shape == (1, 8, 8) and torch.equal(first[1], dataset[2][1])
    assert len(dataset) == 5


def test_folder_reader_names_a_bad_file(tmp_path: Path) -> None:
    write_image(Image.from_array(np.zeros((4, 4), np.float32), spacing=(1, 1)), tmp_path / "subj000_a.nii.gz")
    write_image(Image.from_array(np.zeros((4, 5), np.float32), spacing=(1, 1)), tmp_path / "subj001_a.nii.gz")
    with pytest.raises(InputError, match="subj001_a"):
        read_folder_slices(tmp_path)


def _ixi_tar(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name in names:
            payload = name.encode()
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


IXI_NAMES = ["IXI002-Guys-0828-T1.nii.gz", "IXI012-HH-1211-T1.nii.gz", "IXI035-IOP-0873-T1.nii.gz", "README.txt"]


def test_parse_ixi_name() -> None:
    assert parse_ixi_name("IXI012-HH-1211-T2.nii.gz") == {"subject": "IXI012", "site": "HH", "field_strength": "3T", "contrast": "T2"}
    assert parse_ixi_name("IXI002-Guys-0828-T1.nii.gz")["field_strength"] == "1.5T"  # type: ignore[index]
    assert parse_ixi_name("notes.txt") is None


def test_organise_ixi_sorts_by_site(tmp_path: Path) -> None:
    archive = _ixi_tar(tmp_path / "IXI-T1.tar", IXI_NAMES)
    manifest = organise_ixi([archive], tmp_path / "out")
    assert manifest["counts"] == {"1.5T": 2, "3T": 1} and manifest["skipped"] == 1
    assert (tmp_path / "out" / "3T" / "T1" / "IXI012-HH-1211-T1.nii.gz").read_bytes() == b"IXI012-HH-1211-T1.nii.gz"
    assert sorted(p.name for p in (tmp_path / "out" / "1.5T" / "T1").iterdir()) == ["IXI002-Guys-0828-T1.nii.gz", "IXI035-IOP-0873-T1.nii.gz"]
    (tmp_path / "broken.tar").write_bytes(b"not a tar")
    with pytest.raises(InputError, match="broken.tar"):
        organise_ixi([tmp_path / "broken.tar"], tmp_path / "out2")


@pytest.fixture()
def local_server(tmp_path: Path, serve_directory: Callable[[Path], str]) -> str:
    served = tmp_path / "served"
    served.mkdir()
    _ixi_tar(served / "IXI-T1.tar", IXI_NAMES)
    _ixi_tar(served / "IXI-T2.tar", ["IXI012-HH-1211-T2.nii.gz"])
    _ixi_tar(served / "IXI-PD.tar", ["IXI002-Guys-0828-PD.nii.gz"])
    return serve_directory(served)


def test_download_from_a_local_server(tmp_path: Path, local_server: str) -> None:
    paths = download_archives(["IXI-T1.tar"], tmp_path / "archives", local_server)
    assert paths[0].read_bytes() == (tmp_path / "served" / "IXI-T1.tar").read_bytes()
    again = download_archives(["IXI-T1.tar"], tmp_path / "archives", local_server)  # complete file kept
    assert again == paths
    with pytest.raises(MedrestoreError, match="download failed"):
        download_archives(["missing.tar"], tmp_path / "archives", local_server)


def test_cli_ixi_download_and_organise(tmp_path: Path, local_server: str) -> None:
    argv = ["harmonize-data", "ixi", str(tmp_path / "archives"), "-o", str(tmp_path / "ixi"), "--download", "--base-url", local_server]
    assert main(argv) == 0
    manifest = json.loads((tmp_path / "ixi" / "manifest.json").read_text())
    assert manifest["counts"] == {"1.5T": 3, "3T": 2}
    assert (tmp_path / "ixi" / "3T" / "T2" / "IXI012-HH-1211-T2.nii.gz").is_file()


def test_folders_of_volumes_and_16_bit_dicom_give_float_slices(tmp_path: Path) -> None:
    volume = np.random.default_rng(0).uniform(0, 1000, (6, 5, 3)).astype(np.float32)
    write_image(Image.from_array(volume, spacing=(1, 1, 2)), tmp_path / "vol" / "subj000.nii.gz")
    names, slices = read_folder_slices(tmp_path / "vol")
    assert names == ("subj000.nii.gz:000", "subj000.nii.gz:001", "subj000.nii.gz:002") and slices.shape == (3, 5, 6)
    np.testing.assert_allclose(slices[1].numpy(), np.flip(volume[:, :, 1].T, 0))
    write_image(Image.from_array(volume[:, :, 0], spacing=(1, 1)), tmp_path / "dcm" / "subj001.dcm")
    _, dicom = read_folder_slices(tmp_path / "dcm")
    assert dicom.dtype == torch.float32 and len(torch.unique(dicom)) == dicom.numel()  # no 8-bit collapse
    np.testing.assert_allclose(dicom[0].numpy(), volume[:, :, 0], atol=1000 / 65535 * 2)
