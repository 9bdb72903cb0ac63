"""What the numbers were measured on: command, date, cores, CPU model, memory, load."""

from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Machine:
    command: str
    date: str
    nproc: int
    cpu: str
    ram_gib: float
    load: str
    python: str


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / (1 << 20)
    return 0.0


def describe() -> Machine:
    one, five, fifteen = os.getloadavg()
    return Machine(
        command=" ".join(["python -m loadtests", *sys.argv[1:]]),
        date=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        nproc=os.cpu_count() or 0,
        cpu=_cpu_model(),
        ram_gib=_ram_gib(),
        load=f"{one:.2f} {five:.2f} {fifteen:.2f}",
        python=platform.python_version(),
    )
