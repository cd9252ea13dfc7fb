"""``medrestore view``: the local web viewer — open a study, pick a method, set its parameters, compare
before/after with a slider, read PSNR/SSIM against a reference, download the result.

Examples::

    medrestore view                                   # the files of this folder, http://127.0.0.1:8765/
    medrestore view noisy.nii.gz --reference clean.nii.gz --open
    medrestore view --root ../shared/data --port 0    # any free port; the address is printed

It serves only on this machine (``--host 127.0.0.1``) and reads only the files under ``--root``
(default: the folder of IMAGE, else the current folder). Results go to a temporary work folder that is
deleted when the viewer stops (Ctrl-C, or ``SIGTERM`` from ``kill`` or a process manager), unless ``--workdir``
names one to keep. Opened images stay in memory up to ``--memory-budget`` MiB; beyond it the least recently
used are dropped and read again from their files when shown.

Security: every path a request names must lie under ``--root`` (or name a zoo model), whether or not the file
exists; state-changing requests need the session token of the page, a JSON body and no foreign ``Origin``;
requests whose ``Host`` is not this server's address are refused (see :mod:`medrestore.server.app`).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import tempfile
import webbrowser
from pathlib import Path

from medrestore.cli.options import add_reference_option, add_value_options
from medrestore.server.app import ViewerServer
from medrestore.tasks.viewer import DEFAULT_MEMORY_BUDGET, Viewer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``[IMAGE] [--reference REF] [--root DIR] [--host H] [--port P] [--workdir DIR] [--memory-budget MB] [--open]``."""
    parser.add_argument("image", nargs="?", metavar="IMAGE", help="an image to open as the first study (inside --root)")
    add_reference_option(parser, "the clean image IMAGE's results are scored against")
    parser.add_argument("--root", metavar="DIR", help="the folder whose files the viewer may open (default: IMAGE's folder, else .)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    parser.add_argument("--workdir", metavar="DIR", help="keep results in DIR (default: a temporary folder, deleted on exit)")
    parser.add_argument("--memory-budget", type=_mebibytes, default=DEFAULT_MEMORY_BUDGET >> 20, metavar="MB",
                        help=f"MiB of opened images kept in memory (default {DEFAULT_MEMORY_BUDGET >> 20}); beyond it the least recently used are read again when shown")
    parser.add_argument("--open", action="store_true", help="open the page in the default web browser")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    add_value_options(parser)


def run(args: argparse.Namespace) -> int:
    root = Path(args.root) if args.root else Path(args.image).resolve().parent if args.image else Path.cwd()
    temporary = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="medrestore-view-")) if temporary else Path(args.workdir)
    try:
        viewer = Viewer(root, workdir, args.nonfinite, memory_budget=args.memory_budget << 20)
        first = None if args.image is None else viewer.open(Path(args.image).resolve(), None if args.reference is None else Path(args.reference).resolve())
        server = ViewerServer(viewer, args.host, args.port, verbose=args.verbose)
        url = server.url + ("" if first is None else f"?study={first.id}")
        print(f"medrestore viewer at {url} (files of {viewer.root}; Ctrl-C to stop)", flush=True)
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"  listening on {args.host}: anyone who can reach this address can read the files of {viewer.root}", flush=True)
        if args.open:
            webbrowser.open(url)
        previous = signal.signal(signal.SIGTERM, _stop)  # kill / a process manager: the same clean stop as Ctrl-C
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("medrestore viewer stopped", flush=True)
        finally:
            signal.signal(signal.SIGTERM, previous)
            server.server_close()
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)  # results not downloaded go with it
    return 0


def _mebibytes(text: str) -> int:
    """``--memory-budget``: a whole number of MiB, at least 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of MiB, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0 MiB, got {value}")
    return value


def _stop(signum: int, frame: object) -> None:
    """``SIGTERM`` handler: stop serving as Ctrl-C does (the work folder is removed on the way out)."""
    raise KeyboardInterrupt
