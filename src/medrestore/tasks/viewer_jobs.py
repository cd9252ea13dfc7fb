"""The local web viewer's shared state (:mod:`medrestore.tasks.viewer`): images held in memory under a budget,
and jobs whose progress can be read and which can be cancelled.

:class:`ImageCache` keeps images by key up to a budget of bytes and drops the least recently used, which the
viewer reads again from their files when next shown. A :class:`Job` is the
:class:`~medrestore.core.progress.ProgressSink` of one operation: the ``progress``/``track`` marks in the task's
loops update it, and after :meth:`Job.cancel` the next mark raises :class:`Cancelled`, before the task writes its
output.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from medrestore.core.errors import ConfigError, MedrestoreError
from medrestore.core.image import Image

DEFAULT_MEMORY_BUDGET = 2 << 30
"""Bytes of images kept in memory by default (:class:`ImageCache`)."""


class Cancelled(MedrestoreError):
    """A job stopped at a progress mark of its task because it was cancelled (:meth:`Job.cancel`)."""


def image_bytes(image: Image) -> int:
    """Bytes of ``image``'s voxels in memory."""
    return image.data.element_size() * image.data.numel()


class ImageCache:
    """Images kept in memory up to ``budget`` bytes, by key; beyond it the least recently used are dropped and
    loaded again (by the caller's loader) when next asked for. The image just stored or asked for is always
    kept, even alone over the budget. Safe to share between threads.
    """

    def __init__(self, budget: int = DEFAULT_MEMORY_BUDGET) -> None:
        if budget < 0:
            raise ConfigError(f"memory budget must be at least 0 bytes, got {budget}")
        self.budget = budget
        self._images: collections.OrderedDict[Hashable, Image] = collections.OrderedDict()
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes of the images held now."""
        with self._lock:
            return sum(image_bytes(image) for image in self._images.values())

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._images

    def get(self, key: Hashable, load: Callable[[], Image]) -> Image:
        """The image under ``key``, from memory or ``load()`` (then kept, dropping the least recently used)."""
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        image = load()  # outside the lock: reading a file takes a while, other images stay available meanwhile
        self.put(key, image)
        return image

    def put(self, key: Hashable, image: Image) -> None:
        """Keep ``image`` under ``key`` as the most recently used."""
        with self._lock:
            self._images[key] = image
            self._images.move_to_end(key)
            total = sum(image_bytes(held) for held in self._images.values())
            while total > self.budget and len(self._images) > 1:
                _, dropped = self._images.popitem(last=False)
                total -= image_bytes(dropped)

    def drop(self, which: Callable[[Hashable], bool]) -> None:
        """Forget every image whose key ``which`` accepts."""
        with self._lock:
            for key in [key for key in self._images if which(key)]:
                del self._images[key]


@dataclasses.dataclass
class Job:
    """One run of an operation on a study: its state (``waiting`` for the one running before it, ``running``,
    ``done``, ``failed``, ``cancelled``) and, while it runs, the progress marks of its task (a
    :class:`~medrestore.core.progress.ProgressSink`: nested stages, outermost first)."""

    id: str
    study: str
    operation: str
    state: str = "waiting"
    stages: list[list[Any]] = dataclasses.field(default_factory=list)
    result: str | None = None
    error: str | None = None
    started: float = dataclasses.field(default_factory=time.monotonic)
    _cancel: threading.Event = dataclasses.field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Stop at the task's next progress mark (or before it starts, while waiting)."""
        self._cancel.set()

    def check(self) -> None:
        """Raises :class:`Cancelled` once :meth:`cancel` was called."""
        if self._cancel.is_set():
            raise Cancelled(f"{self.operation} on study {self.study} was cancelled")

    def begin(self, label: str, total: int | None) -> None:
        self.check()
        self.stages.append([label, 0, total])

    def advance(self, label: str, done: int, total: int | None) -> None:
        self.check()
        for stage in reversed(self.stages):
            if stage[0] == label:
                stage[1:] = [done, total]
                break

    def end(self, label: str) -> None:
        for index in range(len(self.stages) - 1, -1, -1):
            if self.stages[index][0] == label:
                del self.stages[index]
                break

    @property
    def active(self) -> bool:
        return self.state in ("waiting", "running")

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "study": self.study, "operation": self.operation, "state": self.state, "result": self.result,
            "error": self.error, "seconds": round(time.monotonic() - self.started, 1), "cancelling": self._cancel.is_set() and self.active,
            "stages": [{"label": label, "done": done, "total": total} for label, done, total in list(self.stages)],
        }  # fmt: skip


KEPT_JOBS = 100
"""Finished jobs remembered (for :meth:`Viewer.jobs`) besides the waiting and running ones."""


__all__ = ["DEFAULT_MEMORY_BUDGET", "KEPT_JOBS", "Cancelled", "ImageCache", "Job", "image_bytes"]
