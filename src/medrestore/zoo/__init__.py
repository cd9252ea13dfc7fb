"""The model zoo: trained weights with model cards, verified by SHA-256 before loading.

``list_cards()`` lists every card in :func:`zoo_dirs` (the packaged folder plus the
``MEDRESTORE_ZOO`` folders), ``load_pretrained(name)`` rebuilds a model with verified weights
(``load_pretrained_harmonizer(name)`` a fitted harmoniser such as the coupled dictionaries),
``save_to_zoo(model, ...)`` writes weights and card atomically. No network access.
"""

from medrestore.zoo.card import ModelCard, card_from_mapping, is_harmonizer_card, read_card
from medrestore.zoo.store import (
    PACKAGED_ZOO,
    ZOO_ENVIRONMENT_VARIABLE,
    ZooEntry,
    find_in_zoo,
    in_zoo,
    list_cards,
    list_zoo,
    load_pretrained,
    load_pretrained_harmonizer,
    save_to_zoo,
    verify_weights,
    zoo_dirs,
)

__all__ = [
    "PACKAGED_ZOO",
    "ZOO_ENVIRONMENT_VARIABLE",
    "ModelCard",
    "ZooEntry",
    "card_from_mapping",
    "find_in_zoo",
    "in_zoo",
    "is_harmonizer_card",
    "list_cards",
    "list_zoo",
    "load_pretrained",
    "load_pretrained_harmonizer",
    "read_card",
    "save_to_zoo",
    "verify_weights",
    "zoo_dirs",
]
