"""Load once per run: loaders of models and other costly read-only objects, cached inside a scope.

A loader decorated with :func:`cached_in_run` runs normally, except inside a :func:`load_once`
block (a batch run over many files), where each distinct call is made once and its result
reused. Outside such a block nothing is cached, so a checkpoint rewritten between two calls of
a long-lived process is always read afresh. Results must be treated as read-only.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections.abc import Callable, Hashable, Iterator
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_SCOPE: contextvars.ContextVar[dict[Hashable, Any] | None] = contextvars.ContextVar("medrestore_load_once", default=None)


@contextlib.contextmanager
def load_once() -> Iterator[None]:
    """Inside the block, every :func:`cached_in_run` loader runs once per distinct arguments."""
    token = _SCOPE.set({})
    try:
        yield
    finally:
        _SCOPE.reset(token)


def cached_in_run(function: Callable[P, R]) -> Callable[P, R]:
    """Cache ``function``'s results inside :func:`load_once` blocks (arguments must be hashable to be cached)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        scope = _SCOPE.get()
        if scope is None:
            return function(*args, **kwargs)
        key = (function.__module__, function.__qualname__, args, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:
            return function(*args, **kwargs)
        if key not in scope:
            scope[key] = function(*args, **kwargs)
        return scope[key]

    return wrapper
