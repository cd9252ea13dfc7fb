"""``core.regions.bounding_box``: the box of a mask, grown and clipped."""

from __future__ import annotations

import numpy as np
import pytest

from medrestore.core.regions import bounding_box


def test_bounding_box_grows_by_the_margin_and_stops_at_the_edges() -> None:
    mask = np.zeros((10, 12, 8), bool)
    mask[3, 4:7, 1] = True
    mask[5, 5, 6] = True
    assert bounding_box(mask) == (slice(3, 6), slice(4, 7), slice(1, 7))
    assert bounding_box(mask, 2) == (slice(1, 8), slice(2, 9), slice(0, 8))
    assert bounding_box(np.ones((4, 5), bool), 3) == (slice(0, 4), slice(0, 5))
    assert bounding_box(np.zeros((4, 5), bool), 1) is None
    with pytest.raises(ValueError, match="margin"):
        bounding_box(mask, -1)
