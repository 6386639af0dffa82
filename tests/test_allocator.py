"""`keep_freed_memory`: freed blocks are reused instead of faulting in fresh pages (glibc on Linux)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from samformer.cli import allocator

# Tensors of 1-8 MiB allocated and freed in turn, like a training step's intermediates; minor page faults counted.
PROBE = """
import ctypes, resource, sys, torch
from samformer.cli.allocator import keep_freed_memory
libc = ctypes.CDLL("libc.so.6")
libc.mallopt(-3, 128 << 10), libc.mallopt(-1, 0)  # start from static thresholds that return every freed block
tuned = sys.argv[1] == "tuned" and keep_freed_memory()
x = torch.randn(256, 7, 512)  # 3.5 MiB


def rounds():
    for i in range(40):
        y = (x[: 32 + 32 * (i % 8)] - 1.0) * 2.0  # outputs of 0.4-3.5 MiB, freed each round
        del y


rounds()  # the heap reaches its high-water mark
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds()
print(int(tuned), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def faults(mode: str) -> tuple[bool, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True).stdout.split()
    return bool(int(out[0])), int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_memory_is_reused_without_page_faults():
    tuned, tuned_faults = faults("tuned")
    if not tuned:
        pytest.skip("the C library is not glibc")
    _, default_faults = faults("returning")
    # 40 rounds of two 0.4-3.5 MiB outputs: memory returned on free faults in again (thousands of pages), kept memory does not
    assert tuned_faults <= 10 and default_faults > 1000, (tuned_faults, default_faults)


def test_opting_out_leaves_the_allocator_alone(monkeypatch):
    monkeypatch.setenv(allocator.OPT_OUT, "0")
    assert allocator.keep_freed_memory() is False
