"""Start-up: ``medrestore --help``/``--version`` import no workflow and no torch; a command imports
only its own module (the time itself is measured by ``benchmarks/cli_startup.py``)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from medrestore.cli.main import COMMANDS, build_parser

PROBE = """
import contextlib, io, json, sys
from medrestore.cli.main import main
argv = json.loads(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main(argv)
    except SystemExit:
        pass
print(json.dumps({"modules": sorted(sys.modules), "out": out.getvalue()}))
"""


def _loaded(argv: list[str]) -> tuple[list[str], str]:
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True, text=True, check=True)
    report = json.loads(result.stdout.splitlines()[-1])
    return report["modules"], report["out"]


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_import_no_workflow(argv: list[str]) -> None:
    modules, out = _loaded(argv)
    assert "torch" not in modules and "scipy" not in modules
    assert not [m for m in modules if m.startswith(("medrestore.tasks", "medrestore.io", "medrestore.models"))]
    if argv == ["--help"]:
        assert all(name in out for name in COMMANDS)


def test_a_command_imports_only_its_module() -> None:
    modules, out = _loaded(["evaluate", "--help"])
    commands = [m for m in modules if m.startswith("medrestore.cli.") and m not in ("medrestore.cli.main", "medrestore.cli.options")]
    assert commands == ["medrestore.cli.evaluate"]
    assert "medrestore.tasks.denoise_mri" not in modules and "--pred" in out


def test_every_command_module_plugs_in() -> None:
    """Each command's module adds its arguments and a handler (what ``--help`` lists is what runs)."""
    parser = build_parser()
    choices = next(action.choices for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    assert sorted(choices) == sorted(COMMANDS)
    for name, sub in choices.items():
        assert callable(sub.get_default("handler")), name


def test_a_numpy_command_loads_neither_pydicom_nor_the_trainer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Readers and writers load per format, pydicom where a file may be DICOM, the trainer only for training.
    (nibabel imports pydicom itself when its NIfTI module loads, so a NIfTI command loads it anyway.)"""
    import numpy as np

    source = tmp_path / "in.npy"
    np.save(source, np.ones((8, 8), np.float32))
    modules, _ = _loaded(["degrade", str(source), "-o", str(tmp_path / "out.npy"), "--kind", "gaussian", "--sigma", "0.1"])
    assert "medrestore.io.numpy_io" in modules and (tmp_path / "out.npy").exists()  # it ran
    assert "pydicom" not in modules and "medrestore.io.dicom" not in modules and "medrestore.io.nifti" not in modules
    assert "medrestore.training.trainer" not in modules and "medrestore.training.experiment" not in modules
    assert "SimpleITK" not in modules and "nibabel" not in modules  # NRRD/MetaImage and the neuro formats load them


def test_a_closed_pipe_ends_the_command_quietly() -> None:
    """``medrestore models | true``: the reader is gone before the output is written; no traceback, exit 141 (as a
    shell tool killed by SIGPIPE)."""
    process = subprocess.Popen([sys.executable, "-m", "medrestore.cli.main", "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # nothing will read what it prints
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and error == "", error
