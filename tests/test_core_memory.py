"""``medrestore.core.memory``: glibc's allocator keeps freed memory once asked, in a process of its own."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
from medrestore.core.memory import keep_freed_memory
libc = ctypes.CDLL("libc.so.6")

class Info(ctypes.Structure):  # glibc's struct mallinfo2: heap (arena) and mmap-ed bytes
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc.mallinfo2.restype = Info
applied = keep_freed_memory() if sys.argv[1] == "keep" else False
libc.malloc.restype = ctypes.c_void_p
block = libc.malloc(64 << 20)
mapped = libc.mallinfo2().hblkhd
libc.free(ctypes.c_void_p(block))
print(applied, mapped >= 64 << 20, libc.mallinfo2().arena >= 64 << 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_blocks_come_from_the_heap_and_stay_after_free() -> None:
    def probe(mode: str) -> str:
        return subprocess.run([sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True).stdout.split()

    default = probe("default")
    if default[1] != "True":
        pytest.skip("this C library does not serve 64 MB blocks by mmap")
    assert default == ["False", "True", "False"]  # mmap-ed, and given back on free
    assert probe("keep") == ["True", "False", "True"]  # from the heap, and kept after free


HUGEPAGE_PROBE = """
import sys
from medrestore.cli.main import main
try:
    main(["models", "--help"])
except SystemExit:
    pass
from numpy._core.multiarray import _get_madvise_hugepage
print(_get_madvise_hugepage())
"""


@pytest.mark.parametrize(("user", "expected"), [(None, "False"), ("1", "True"), ("0", "False")])
def test_the_command_line_stops_numpy_asking_for_huge_pages_unless_the_user_set_it(user: str | None, expected: str) -> None:
    import os

    environment = {key: value for key, value in os.environ.items() if key != "NUMPY_MADVISE_HUGEPAGE"}
    if user is not None:
        environment["NUMPY_MADVISE_HUGEPAGE"] = user
    output = subprocess.run([sys.executable, "-c", HUGEPAGE_PROBE], check=True, capture_output=True, text=True, env=environment)
    assert output.stdout.split()[-1] == expected


def test_no_numpy_hugepages_after_numpy_is_loaded_changes_its_running_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from numpy._core.multiarray import _get_madvise_hugepage, _set_madvise_hugepage

    from medrestore.core.memory import NUMPY_HUGEPAGE_VARIABLE, no_numpy_hugepages

    before = _set_madvise_hugepage(True)
    try:
        monkeypatch.delenv(NUMPY_HUGEPAGE_VARIABLE, raising=False)
        assert no_numpy_hugepages() is True
        assert _get_madvise_hugepage() is False
        _set_madvise_hugepage(True)
        monkeypatch.setenv(NUMPY_HUGEPAGE_VARIABLE, "1")
        assert no_numpy_hugepages() is False
        assert _get_madvise_hugepage() is True
    finally:
        _set_madvise_hugepage(before)
