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
