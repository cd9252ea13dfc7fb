"""Errors a user sees. Every error about a file names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class MedrestoreError(Exception):
    """Base class for errors raised deliberately by medrestore (shown without a traceback by the CLI)."""


class InputError(MedrestoreError):
    """A file (or value) given by the user cannot be used.

    The message always reads ``"<path>: <problem>"`` so a batch job's log says which file failed.
    """

    def __init__(self, path: str | Path | None, problem: str) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(problem if path is None else f"{path}: {problem}")


class ConfigError(MedrestoreError):
    """A configuration file or option is invalid."""
