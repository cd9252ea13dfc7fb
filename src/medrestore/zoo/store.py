"""The model zoo on disk: folders of ``cards/<name>.json`` and ``weights/<name>.pt``.

Zoo folders are searched in order: the folder shipped inside the package, then every folder
listed in the ``MEDRESTORE_ZOO`` environment variable (separated by ``os.pathsep``). When a
name appears twice, the first folder wins, so shipped models cannot be shadowed.

Weights are a ``state_dict`` saved with ``torch.save``: a network's, or what a fitted
harmoniser learned (:meth:`~medrestore.models.harmonizers.Harmonizer.state_dict`, e.g. the
coupled dictionaries and their transfer curves), loaded with :func:`load_pretrained_harmonizer`. Before anything is unpickled, the
file's SHA-256 is compared with the card's and loading is refused on any difference; the
file is then read with ``torch.load(weights_only=True)``. Nothing is ever downloaded.

Example:
    >>> model, card = load_pretrained("unet-oct-denoise")  # doctest: +SKIP
    >>> card.metrics_summary()  # doctest: +SKIP
    'PSNR 30.10 dB / SSIM 0.850 (oct-test)'
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import io
import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from medrestore.core.device import select_device
from medrestore.core.errors import InputError, MedrestoreError
from medrestore.core.files import atomic_write_bytes, atomic_write_text, load_torch_file, sha256_file
from medrestore.core.registry import config_to_options
from medrestore.models import architecture_of, create_model
from medrestore.models.harmonizers import HARMONIZERS, Harmonizer
from medrestore.zoo.card import ModelCard, is_harmonizer_card, read_card, require_card_name

PACKAGED_ZOO = Path(__file__).resolve().parent
ZOO_ENVIRONMENT_VARIABLE = "MEDRESTORE_ZOO"
CARDS_FOLDER = "cards"
WEIGHTS_FOLDER = "weights"


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    """A card together with where it was found.

    Attributes:
        card: the validated model card.
        zoo_dir: the zoo folder holding it.
        card_path: the card file, ``zoo_dir / "cards" / f"{card.name}.json"``.
    """

    card: ModelCard
    zoo_dir: Path
    card_path: Path

    @property
    def weights_path(self) -> Path:
        return self.zoo_dir / self.card.weights_file


def zoo_dirs() -> list[Path]:
    """Zoo folders in search order: the packaged one, then each ``MEDRESTORE_ZOO`` entry (empty entries skipped)."""
    folders = [PACKAGED_ZOO]
    for entry in os.environ.get(ZOO_ENVIRONMENT_VARIABLE, "").split(os.pathsep):
        if entry.strip():
            folder = Path(entry.strip()).expanduser()
            if folder not in folders:
                folders.append(folder)
    return folders


def list_zoo() -> list[ZooEntry]:
    """Every card in :func:`zoo_dirs`, first occurrence of each name only, in folder then name order.

    Raises:
        InputError: a card file is invalid (the message names it).
    """
    entries: dict[str, ZooEntry] = {}
    for zoo_dir in zoo_dirs():
        for card_path in sorted((zoo_dir / CARDS_FOLDER).glob("*.json")):
            card = read_card(card_path)
            entries.setdefault(card.name, ZooEntry(card, zoo_dir, card_path))
    return list(entries.values())


def list_cards() -> list[ModelCard]:
    """The cards of :func:`list_zoo`."""
    return [entry.card for entry in list_zoo()]


def find_in_zoo(name: str) -> ZooEntry:
    """The zoo entry called ``name`` (first folder wins).

    Raises:
        MedrestoreError: no card has that name (the message lists the folders searched).
    """
    require_card_name(name)
    for zoo_dir in zoo_dirs():
        card_path = zoo_dir / CARDS_FOLDER / f"{name}.json"
        if card_path.is_file():
            return ZooEntry(read_card(card_path), zoo_dir, card_path)
    searched = ", ".join(str(folder) for folder in zoo_dirs())
    raise MedrestoreError(f"no pretrained model {name!r} in the zoo (searched {searched}; set {ZOO_ENVIRONMENT_VARIABLE} to add folders)")


def in_zoo(name: str) -> bool:
    """Whether a card called ``name`` is installed (:func:`find_in_zoo` without the error)."""
    try:
        find_in_zoo(name)
    except MedrestoreError:
        return False
    return True


def verify_weights(entry: ZooEntry) -> Path:
    """The weights file of ``entry`` after checking its SHA-256 against the card.

    Raises:
        MedrestoreError: the file is missing or its hash differs (the message names the file,
            the card and both hashes).
    """
    weights_path = entry.weights_path
    if not weights_path.is_file():
        raise MedrestoreError(
            f"{weights_path}: weights file named by {entry.card_path} is missing "
            f"(expected sha256 {entry.card.sha256}, found no file)"
        )
    actual = sha256_file(weights_path)
    if actual != entry.card.sha256:
        raise MedrestoreError(
            f"{weights_path}: sha256 mismatch, refusing to load: card {entry.card_path} expects "
            f"{entry.card.sha256}, file has {actual}"
        )
    return weights_path


def _read_state_dict(weights_path: Path) -> Mapping[str, torch.Tensor]:
    state = load_torch_file(weights_path, map_location="cpu")
    if not isinstance(state, Mapping) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise InputError(weights_path, "weights file does not hold a state_dict (a mapping of names to tensors)")
    return state


def load_pretrained(name: str, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Build zoo model ``name`` with its verified weights, in eval mode on ``device``.

    Steps: find the card, check the weights file's SHA-256 against it (before unpickling),
    ``torch.load(weights_only=True)``, rebuild the architecture from the card's options and
    load the state dict strictly.

    Raises:
        MedrestoreError: unknown name, missing or tampered weights file.
        InputError: an unreadable card or weights that do not fit the architecture.
    """
    entry = find_in_zoo(name)
    if is_harmonizer_card(entry.card):
        raise MedrestoreError(
            f"zoo model {name!r} is a fitted {entry.card.architecture} harmoniser, not a network: load it with load_pretrained_harmonizer"
        )
    weights_path = verify_weights(entry)
    state = _read_state_dict(weights_path)
    model = create_model(entry.card.architecture, entry.card.options)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise InputError(weights_path, f"weights do not fit architecture {entry.card.architecture!r}: {error}") from None
    target = select_device(device) if isinstance(device, str) else device
    return model.to(target).eval(), entry.card


def load_pretrained_harmonizer(name: str) -> tuple[Harmonizer, ModelCard]:
    """Rebuild zoo harmoniser ``name`` (a card whose architecture is a registered harmoniser).

    Same checks as :func:`load_pretrained`: SHA-256 before unpickling, ``weights_only`` load,
    then the harmoniser is built from the card's options and given exactly the tensors its
    :meth:`~medrestore.models.harmonizers.Harmonizer.state_dict` names.

    Raises:
        MedrestoreError: unknown name, a network card, missing or tampered weights file.
        InputError: weights whose tensor names differ from the harmoniser's.
    """
    entry = find_in_zoo(name)
    if not is_harmonizer_card(entry.card):
        raise MedrestoreError(f"zoo model {name!r} is a {entry.card.architecture} network, not a fitted harmoniser: load it with load_pretrained")
    weights_path = verify_weights(entry)
    state = _read_state_dict(weights_path)
    harmonizer = HARMONIZERS.get(entry.card.architecture).create(entry.card.options)
    expected, found = set(harmonizer.state_dict()), set(state)
    if expected != found:
        raise InputError(
            weights_path,
            f"weights do not fit harmoniser {entry.card.architecture!r}: missing {sorted(expected - found)}, unexpected {sorted(found - expected)}",
        )
    harmonizer.load_state_dict(state)
    return harmonizer, entry.card


def _state_dict_bytes(model: nn.Module | Harmonizer) -> bytes:
    """The model's ``state_dict`` (CPU copies) serialised with ``torch.save``."""
    state = {key: value.detach().to("cpu").clone() for key, value in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _harmonizer_name(harmonizer: Harmonizer) -> str:
    """Registry name of a fitted harmoniser of a registered class (one ``HARMONIZERS`` rebuilds from its config)."""
    constructor = HARMONIZERS.get(harmonizer.name).constructor if harmonizer.name in HARMONIZERS else None
    if not (isinstance(constructor, type) and isinstance(harmonizer, constructor)):
        classes = [entry.name for entry in HARMONIZERS if isinstance(entry.constructor, type)]
        raise MedrestoreError(f"{type(harmonizer).__name__} ({harmonizer.name}) is not a registered harmoniser class; known: {', '.join(classes)}")
    return harmonizer.name


def _check_name_free(name: str, zoo_dir: Path, overwrite: bool) -> None:
    """Refuse a name that an earlier zoo folder would shadow, or that ``zoo_dir`` holds (unless ``overwrite``)."""
    target = zoo_dir / CARDS_FOLDER / f"{name}.json"
    for folder in zoo_dirs():
        if folder.resolve() == zoo_dir.resolve():
            break
        existing = folder / CARDS_FOLDER / f"{name}.json"
        if existing.is_file():
            raise MedrestoreError(f"{existing}: a zoo model called {name!r} already exists there (choose another name)")
    if target.is_file() and not overwrite:
        raise MedrestoreError(f"{target}: a zoo model called {name!r} already exists (pass overwrite=True to replace it)")


def save_to_zoo(
    model: nn.Module | Harmonizer,
    *,
    name: str,
    task: str,
    modality: str,
    normalisation: Mapping[str, object],
    training: Mapping[str, object],
    metrics: Mapping[str, object],
    licence: str,
    description: str,
    zoo_dir: Path,
    created: str | None = None,
    overwrite: bool = False,
) -> ModelCard:
    """Write ``model``'s weights and card into ``zoo_dir`` and return the card.

    The architecture and its options are read from the model itself (its class in the
    registry and its ``config``; a fitted harmoniser's registry name), so the card always
    rebuilds the same network or harmoniser. Writes
    ``zoo_dir/weights/<name>.pt`` (the ``state_dict``, CPU tensors) and then
    ``zoo_dir/cards/<name>.json`` with the SHA-256 of exactly the bytes written; both writes
    are atomic and the card comes last, so a card never points at missing weights.

    Raises:
        MedrestoreError: unregistered architecture or harmoniser; the name is used by a zoo folder searched
            before ``zoo_dir`` (it would shadow the new model; every folder counts when
            ``zoo_dir`` is not on the search path); or ``zoo_dir`` holds it and not ``overwrite``.
        InputError: a card field is invalid (nothing is written then).
    """
    require_card_name(name)
    zoo_dir = Path(zoo_dir)
    architecture = _harmonizer_name(model) if isinstance(model, Harmonizer) else architecture_of(model)
    payload = _state_dict_bytes(model)
    card = ModelCard(
        name=name,
        task=task,
        modality=modality,
        architecture=architecture,
        options=config_to_options(model.config),
        normalisation=dict(normalisation),
        training=dict(training),
        metrics=dict(metrics),
        licence=licence,
        weights_file=f"{WEIGHTS_FOLDER}/{name}.pt",
        sha256=hashlib.sha256(payload).hexdigest(),
        created=created or datetime.date.today().isoformat(),
        description=description,
    )
    _check_name_free(name, zoo_dir, overwrite)
    atomic_write_bytes(zoo_dir / card.weights_file, payload)
    atomic_write_text(zoo_dir / CARDS_FOLDER / f"{name}.json", card.to_json())
    return card
