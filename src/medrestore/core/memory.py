"""Keep freed memory inside the process, so that large temporaries are not page-faulted in again and again.

A volume-sized temporary (a 197 × 233 × 189 float32 volume is 35 MB) is above glibc's threshold for serving an
allocation from ``mmap``: by default every such array gets fresh pages from the kernel, which zero-fills each page on
its first touch, and returns them on ``free``. The MRI default creates hundreds of such temporaries (shifted copies,
weights, running sums), so on machines where page faults are slow a large part of its time went to faulting the
same amount of memory in over and over. :func:`keep_freed_memory` raises glibc's ``mmap`` and trim thresholds
(``mallopt(M_MMAP_THRESHOLD)``, ``mallopt(M_TRIM_THRESHOLD)``; see ``man 3 mallopt``), so large blocks come from the
heap and freed ones stay there for the next allocation. The price: memory freed by the process is not given back to
the system until it exits, so its resident size stays at its peak. Commands that run one job and exit (the CLI)
call it; a library call never does.

NumPy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``) on every large array by default. Where
the kernel's ``transparent_hugepage/defrag`` setting is ``madvise`` (a common default), each such first touch may
compact memory synchronously to find a free 2 MB page, which on some (virtual) machines costs seconds per GB. The
command line turns that request off (:func:`no_numpy_hugepages`); ordinary 4 kB pages are then faulted in without
compaction. A user's own ``NUMPY_MADVISE_HUGEPAGE`` setting wins.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter numbers of glibc's ``malloc.h``."""
LARGEST_THRESHOLD = 2**31 - 1
"""The largest value ``mallopt`` takes (a C ``int``): blocks up to 2 GiB come from the heap and freed memory stays."""


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` serve large blocks from its heap and keep freed memory (module docstring).

    Returns:
        Whether both settings took effect: ``False`` off Linux or on a C library other than glibc (nothing changes).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGEST_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, LARGEST_THRESHOLD))


NUMPY_HUGEPAGE_VARIABLE = "NUMPY_MADVISE_HUGEPAGE"
"""NumPy's environment variable: ``0`` stops it from asking for huge pages on large arrays (read when NumPy loads)."""


def no_numpy_hugepages() -> bool:
    """Stop NumPy from asking for transparent huge pages on large arrays (module docstring), unless the user set
    :data:`NUMPY_HUGEPAGE_VARIABLE` themselves.

    Before NumPy is imported this sets the variable's default (child processes inherit it); after, it changes NumPy's
    running setting in this process only.

    Returns:
        Whether NumPy will not ask for huge pages (``False`` when the user asked for them).
    """
    numpy_core = sys.modules.get("numpy._core.multiarray")
    if numpy_core is None:
        return os.environ.setdefault(NUMPY_HUGEPAGE_VARIABLE, "0").strip() == "0"
    if os.environ.get(NUMPY_HUGEPAGE_VARIABLE, "0").strip() != "0":
        return False  # NumPy reads the value as an integer: any other number asks for huge pages
    numpy_core._set_madvise_hugepage(False)
    return True
