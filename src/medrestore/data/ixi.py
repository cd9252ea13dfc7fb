"""The IXI brain MRI dataset: fetch its tar archives and sort them by scanner field strength.

IXI (https://brain-development.org/ixi-dataset/, CC BY-SA 3.0) holds ~600 healthy subjects
scanned at three London hospitals: Guy's (Philips 1.5 T), Hammersmith (HH, Philips 3 T) and the
Institute of Psychiatry (IOP, GE 1.5 T). Each archive (``IXI-T1.tar``, ``IXI-T2.tar``,
``IXI-PD.tar``...) holds one NIfTI per subject named ``IXI<id>-<site>-<number>-<contrast>.nii.gz``,
so the site — and with it the field strength — is read from the file name.

:func:`organise_ixi` extracts the members of local archives into::

    OUT/1.5T/<contrast>/IXI002-Guys-0828-T1.nii.gz
    OUT/3T/<contrast>/IXI012-HH-1211-T1.nii.gz
    OUT/manifest.json   # per file: subject, site, field strength, contrast, archive, SHA-256

:func:`download_archives` fetches archives over HTTP(S) (``urllib``; resumable by skipping
complete files; atomic writes). Nothing is downloaded unless it is called.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tarfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.files import atomic_path, atomic_write_text

IXI_BASE_URL = "http://biomedic.doc.ic.ac.uk/brain-development/downloads/IXI/"
IXI_ARCHIVES = ("IXI-T1.tar", "IXI-T2.tar", "IXI-PD.tar")
SITE_FIELD_STRENGTH = {"Guys": "1.5T", "IOP": "1.5T", "HH": "3T"}
"""Site code in IXI file names → field strength folder."""

_NAME = re.compile(r"^(IXI\d{3})-(Guys|HH|IOP)-(\d+)-([A-Za-z0-9]+)\.nii(\.gz)?$")


def parse_ixi_name(name: str) -> dict[str, str] | None:
    """``{"subject", "site", "field_strength", "contrast"}`` of an IXI file name, or ``None``."""
    match = _NAME.match(Path(name).name)
    if match is None:
        return None
    subject, site, _, contrast, _ = match.groups()
    return {"subject": subject, "site": site, "field_strength": SITE_FIELD_STRENGTH[site], "contrast": contrast}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def organise_ixi(archives: Sequence[str | Path], output_dir: str | Path) -> dict[str, object]:
    """Extract the IXI NIfTI members of ``archives`` into field-strength folders; returns the manifest.

    Members whose names are not IXI names are skipped and counted; paths inside the archive
    never escape ``output_dir`` (only the base name is used).

    Raises:
        InputError: an archive is missing or not a readable tar file (naming it).
    """
    output_dir = Path(output_dir)
    files: list[dict[str, str]] = []
    skipped = 0
    for archive in map(Path, archives):
        if not archive.is_file():
            raise InputError(archive, "no such archive")
        try:
            with tarfile.open(archive) as tar:
                for member in tar:
                    info = parse_ixi_name(member.name) if member.isfile() else None
                    if info is None:
                        skipped += member.isfile()
                        continue
                    target = output_dir / info["field_strength"] / info["contrast"] / Path(member.name).name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    if source is None:
                        raise InputError(archive, f"member {member.name} cannot be read")
                    with atomic_path(target, suffix=".part") as temporary, temporary.open("wb") as sink:
                        shutil.copyfileobj(source, sink)
                    files.append({**info, "file": str(target.relative_to(output_dir)), "archive": archive.name, "sha256": _sha256(target)})
        except (tarfile.TarError, EOFError, OSError) as error:
            raise InputError(archive, f"not a readable tar archive ({error})") from None
    counts: dict[str, int] = {}
    for entry in files:
        counts[entry["field_strength"]] = counts.get(entry["field_strength"], 0) + 1
    manifest: dict[str, object] = {"files": sorted(files, key=lambda e: e["file"]), "counts": counts, "skipped": skipped}
    atomic_write_text(output_dir / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    return manifest


def download_archives(
    names: Sequence[str], destination: str | Path, base_url: str = IXI_BASE_URL, timeout: float = 60.0
) -> list[Path]:
    """Download ``base_url + name`` for each name into ``destination`` (atomic; existing files of the
    server's ``Content-Length`` are kept). Returns the local paths.

    Raises:
        MedrestoreError: a download fails (HTTP error, connection error, truncated transfer).
    """
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        url = base_url.rstrip("/") + "/" + name
        if not url.startswith(("http://", "https://")):
            raise MedrestoreError(f"{url}: only http(s) URLs are fetched")
        target = destination / Path(name).name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http(s) only, by URL)
                expected = response.headers.get("Content-Length")
                if target.is_file() and expected is not None and target.stat().st_size == int(expected):
                    paths.append(target)
                    continue
                with atomic_path(target, suffix=".part") as temporary, temporary.open("wb") as sink:
                    shutil.copyfileobj(response, sink)
                    sink.flush()
                    written = sink.tell()
                if expected is not None and written != int(expected):
                    target.unlink(missing_ok=True)
                    raise MedrestoreError(f"{url}: transfer truncated ({written} of {expected} bytes)")
        except (urllib.error.URLError, OSError) as error:
            raise MedrestoreError(f"{url}: download failed ({error})") from None
        paths.append(target)
    return paths
