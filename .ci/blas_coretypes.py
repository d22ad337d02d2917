"""Print the OpenBLAS core types that this CPU can run besides the one OpenBLAS picks itself.

Used by ``.ci/run`` to repeat the numerically delicate tests with other BLAS kernels: each
kernel family rounds differently, and a test whose verdict flips with the last bits of
floating point is a defect. Forcing a kernel the CPU cannot execute (AVX-512 on a CPU
without it) crashes, so the candidates are filtered by the CPU flags in /proc/cpuinfo.
Writes the chosen names to stdout (one per line) and a summary to stderr.
``--check NAME`` exits non-zero unless OpenBLAS runs the kernel family NAME (it is run with
``OPENBLAS_CORETYPE`` set, so that an ignored variable cannot pass for a tested kernel).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

# x86-64 kernel families of OpenBLAS and the CPU flags each one executes
CANDIDATES = {
    "SkylakeX": {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"},
    "Haswell": {"avx2", "fma"},
    "SandyBridge": {"avx"},
    "Nehalem": {"sse4_2"},
}
MAX_EXTRA = 3


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def default_coretype() -> str:
    """The kernel family OpenBLAS picks on its own (as threadpoolctl reports it)."""
    import numpy  # noqa: F401  (loads numpy's OpenBLAS)
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("internal_api") == "openblas":
            return str(info.get("architecture", "unknown"))
    return "unknown"


def check(name: str) -> int:
    used = default_coretype()
    if used.lower() != name.lower():
        print(f"OPENBLAS_CORETYPE={name} was not honoured: OpenBLAS runs {used}",
              file=sys.stderr)
        return 1
    return 0


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        return check(sys.argv[2])
    if platform.machine() not in ("x86_64", "AMD64"):
        print(f"no alternative OpenBLAS core types tried on {platform.machine()}",
              file=sys.stderr)
        return 0
    flags = cpu_flags()
    default = default_coretype()
    runnable = [name for name, need in CANDIDATES.items() if need <= flags]
    chosen = [name for name in runnable if name.lower() != default.lower()][:MAX_EXTRA]
    print(f"OpenBLAS default core type: {default}; runnable here: {', '.join(runnable)}; "
          f"repeating the delicate tests with: {', '.join(chosen) or 'none'}", file=sys.stderr)
    print("\n".join(chosen))
    return 0


if __name__ == "__main__":
    sys.exit(main())
