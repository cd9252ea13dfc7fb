"""Progress of long work, reported to whoever listens.

Library code marks its long loops with :func:`progress` (``with progress("slices", n) as
step: ... step()``) and never prints; an application installs a :class:`ProgressSink` for
the duration of a call with :func:`reporting` (the command line shows a bar on a terminal and
occasional lines in a log). With no sink installed, marking progress costs nothing.

The sink lives in a :class:`contextvars.ContextVar`, so concurrent jobs (threads started with
their own context) report to their own sinks.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")


class ProgressSink(Protocol):
    """Receives the progress of one labelled piece of work at a time (possibly nested)."""

    def begin(self, label: str, total: int | None) -> None:
        """Work named ``label`` starts; ``total`` steps are expected (``None`` when unknown)."""

    def advance(self, label: str, done: int, total: int | None) -> None:
        """``done`` steps of ``label`` are finished."""

    def end(self, label: str) -> None:
        """Work named ``label`` is over (finished or abandoned)."""


_SINK: contextvars.ContextVar[ProgressSink | None] = contextvars.ContextVar("medrestore_progress", default=None)


@contextlib.contextmanager
def reporting(sink: ProgressSink | None) -> Iterator[None]:
    """Send the progress of everything run inside the block to ``sink``."""
    token = _SINK.set(sink)
    try:
        yield
    finally:
        _SINK.reset(token)


def _ignore() -> None:
    return None


@contextlib.contextmanager
def progress(label: str, total: int | None = None) -> Iterator[Callable[[], None]]:
    """Mark a long loop: yields ``step()``, to be called once per finished step."""
    sink = _SINK.get()
    if sink is None:
        yield _ignore
        return
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        sink.advance(label, done, total)

    sink.begin(label, total)
    try:
        yield step
    finally:
        sink.end(label)


def track(items: Iterable[T], label: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items``, reporting one step per item (``total`` defaults to ``len(items)``)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress(label, total) as step:
        for item in items:
            yield item
            step()
