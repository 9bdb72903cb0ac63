"""The load generator: `wrk` against a loopback URL, bounded in time, parsed."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}
SIZES = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    requests_per_s: float
    mib_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors + non-2xx/3xx responses


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(text)
    return float(match[1]) * UNITS[match[2]]


def parse(output: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    done = re.search(r"(\d+) requests in", output)
    transfer = re.search(r"Transfer/sec:\s+([\d.]+)(B|KB|MB|GB)", output)
    p50 = re.search(r"^\s+50%\s+(\S+)", output, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", output, re.M)
    if not (rps and done and transfer and p50 and p99):
        raise ValueError(f"unexpected wrk output: {output[-800:]!r}")
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        requests=int(done[1]),
        requests_per_s=float(rps[1]),
        mib_per_s=float(transfer[1]) * SIZES[transfer[2]] / (1 << 20),
        p50_ms=_ms(p50[1]),
        p99_ms=_ms(p99[1]),
        errors=errors + (int(non_2xx[1]) if non_2xx else 0),
    )


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise FileNotFoundError("wrk is not installed: apt-get update && apt-get install -y wrk")
    return found


def run(url: str, headers: dict[str, str], seconds: int = 5, connections: int = 16) -> WrkResult:
    """One thread, `connections` keep-alive connections, for `seconds` (loopback URLs only)."""
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"load only loopback addresses, not {url}")
    args = [wrk_binary(), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 30, check=True)
    return parse(done.stdout)
