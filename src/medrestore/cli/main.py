"""The ``medrestore`` command: one sub-command per module in :mod:`medrestore.cli`.

Each command module defines ``add_arguments(parser)`` and ``run(args) -> int``; its name and
one-line help live in :data:`COMMANDS` so that ``medrestore --help`` and ``--version`` import
no workflow (nor torch), and a command imports only the module it runs. Commands call
:mod:`medrestore.tasks`, never the layers below directly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from medrestore.core.errors import MedrestoreError
from medrestore.core.memory import no_numpy_hugepages

# command name → (module in medrestore.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "info": ("info", "how each file is read: format, shape, voxel size, orientation, stored type, values (images and raw k-space)"),
    "evaluate": ("evaluate", "score a restored image (or a folder of them) against a reference: PSNR, SSIM, NMSE, ..."),
    "degrade": ("degrade", "degrade images (noise, blur + downsampling, gamma camera, MRI scanner appearance) and record how in OUT.json"),
    "phantom": ("phantom", "paper phantoms (printed radioactive ink) and their gamma-camera acquisitions; count calibration"),
    "models": ("models", "list architectures, classical methods and pretrained models"),
    "train": ("train", "train a paired image-to-image model (denoising, enhancement) from a YAML config"),
    "denoise": ("denoise", "denoise images (OCT: the shipped ResUNet ensemble by default; MRI: 2-D/3-D/4-D, non-local means or networks)"),
    "denoise-eval": ("denoise_eval", "score an MRI denoising method without a clean scan: leave-one-out on repetitions, tissue (HMRF) agreement; JSON + PNG"),
    "superres": ("superres", "super-resolve planar scintigrams ×K in counts (total counts kept) and record how in OUT.json"),
    "nema": ("nema", "NEMA NU 1 measures of a gamma-camera QC acquisition: line-source FWHM/FWTM, flood uniformity"),
    "undersample": ("undersample", "undersample raw k-space retrospectively (fastMRI random/equispaced lines or Poisson-disc)"),
    "recon": ("recon", "reconstruct MRI from raw k-space (zero-filled, SENSE, CS wavelet/TV, networks; Cartesian and radial)"),
    "report": ("report", "an HTML report on restored images: summary table, before/after with zoomed insets, difference maps, metrics"),
    "demo": ("demo", "run every available workflow on built-in data and write report.html, metrics.json and PNGs"),
    "simulate-radial": ("simulate_radial", "simulate multi-coil radial k-space of an image (golden-angle/uniform, gradient delays, noise)"),
    "estimate-delay": ("estimate_delay", "estimate gradient delays of radial k-space (RING checked by AC-adaptive, or either alone)"),
    "harmonize": ("harmonize", "harmonise MRI slices or volumes between scanners a (1.5 T) and b (3 T) and record how in OUT.json"),
    "harmonize-analyze": ("harmonize_analyze", "maps of where two scanners' images of one anatomy differ: low-rank + sparse and L1 estimates, PNGs, summary.json"),
    "harmonize-eval": ("harmonize_eval", "score harmonisers on held-out scanner folders: scanner classifier before/after, anatomy, paired PSNR/SSIM, hyperintensity"),
    "harmonize-data": ("harmonize_data", "simulate a 1.5 T / 3 T scanner pair from a clean brain, or sort IXI archives by field strength"),
    "view": ("view", "start the local web viewer: open images, run methods, compare before/after, score against a reference"),
}  # fmt: skip

_ALL = "*"


class HelpFormatter(argparse.HelpFormatter):
    """Shows every option's default as ``(default: X)`` unless its help already names one.

    Options without a value (flags) and options whose default is ``None`` (not given: the
    help says what happens) show none. Defined here, not in :mod:`medrestore.cli.options`,
    so that ``medrestore --help`` imports nothing heavy.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default is argparse.SUPPRESS
            or isinstance(default, bool)
            or default == []
            or not action.option_strings
            or "default" in text.lower()
        ):
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


class Parser(argparse.ArgumentParser):
    """An argument parser with :class:`HelpFormatter`; sub-command parsers (also nested ones) inherit it."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


def _selected_command(argv: Sequence[str]) -> str | None:
    """The command named by ``argv`` (its first word that is not an option), or ``None``."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in COMMANDS else None
    return None


def build_parser(command: str | None = _ALL) -> argparse.ArgumentParser:
    """The argument parser; only ``command``'s module is imported (all of them for the default ``"*"``)."""
    from medrestore import __version__

    parser = Parser(prog="medrestore", description="Physics-aware restoration of medical images.")
    parser.add_argument("--version", action="version", version=f"medrestore {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if command in (_ALL, name):
            module = importlib.import_module(f"medrestore.cli.{module_name}")
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the run like Ctrl-C, so half-written temporary outputs are removed on the way out."""
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point. Deliberate errors print ``medrestore: error: <message>`` and exit with 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    no_numpy_hugepages()  # before a command imports NumPy: large arrays are faulted in without memory compaction
    parser = build_parser(_selected_command(argv))
    args = parser.parse_args(argv)
    previous = signal.getsignal(signal.SIGTERM) if _on_main_thread() else None
    if previous is not None:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.handler(args) or 0)
    except MedrestoreError as error:
        print(f"medrestore: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medrestore: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader of stdout has gone (`medrestore models | head -1`): stop quietly, as a shell tool does; stdout
        # points at /dev/null so that the interpreter's last flush does not fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _on_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())
