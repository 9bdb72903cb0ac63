"""Instructions per placed closure and per matched point: ``python -m loadtests.instructions``.

Why: on a shared VM the same code measures ±30 % apart from one run to the next, even in CPU
time, which hides a 20 % gain or loss. The number of instructions a workload executes does not
move. Each workload runs under valgrind's callgrind with instrumentation switched on
(``callgrind_control``) only around the measured loop, after the data is built and the caches
are warm; the workloads are those of ``bench_matching`` (Lille, bench seeds). ``--against REF``
measures a git revision the same way, in a temporary worktree, for a before/after table.
Needs ``valgrind`` (Debian package), so it is not part of ``make bench``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("closures-batched", "closures-single", "trace-points")
_COLLECTED = re.compile(r"Collected : (\d+)")
_UNITS = re.compile(r"^UNITS (\d+)$", re.MULTILINE)


def _workload(name: str) -> tuple[Callable[[], None], int]:
    """The measured loop of ``name`` (already warm) and how many units one run handles."""
    from loadtests.bench_matching import closure_states, load_timed, make_closures, make_traces
    from traffic_hub.normaliser.placement import NetworkPlacer

    net, _ = load_timed(Path.cwd() / "geo" / "data" / "lille_centre.network.arrow")  # the measured tree's
    if name == "trace-points":
        from geo.matching import match_trace

        traces = [p for _, p in make_traces(net, 60, seed=1)]

        def run() -> None:
            for points in traces:
                match_trace(net, points)

        run()
        return run, sum(len(p) for p in traces)
    closures = closure_states(make_closures(net, 300, seed=2))
    placer = NetworkPlacer(net)

    def run_closures() -> None:
        if name == "closures-batched":
            for lo in range(0, len(closures), 100):
                placer.place_closures(closures[lo : lo + 100])
        else:
            for closure in closures:
                placer.place_closure(closure)

    run_closures()
    return run_closures, len(closures)


def _inner(name: str) -> None:
    """Runs under valgrind: instrumentation on around one warm run of the workload."""
    run, units = _workload(name)
    control = shutil.which("callgrind_control") or "callgrind_control"
    subprocess.run([control, "-i", "on", str(os.getpid())], check=True, capture_output=True)
    run()
    subprocess.run([control, "-i", "off", str(os.getpid())], check=True, capture_output=True)
    print(f"UNITS {units}")


def measure(tree: Path, name: str) -> float:
    """Instructions per unit of ``name`` for the code in ``tree``."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    command = [valgrind, "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=/dev/null"]
    # This file runs as a script, so that a revision without it can be measured: the project's
    # modules come from ``tree`` (PYTHONPATH), the measuring code from here.
    command += [sys.executable, str(Path(__file__).resolve()), "--inner", name]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
    collected, units = _COLLECTED.search(done.stderr), _UNITS.search(done.stdout)
    if done.returncode != 0 or collected is None or units is None:
        raise SystemExit(f"{name} in {tree} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return int(collected.group(1)) / int(units.group(1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtests.instructions")
    parser.add_argument("--against", help="a git revision to measure too, e.g. HEAD~3")
    parser.add_argument("--inner", choices=WORKLOADS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inner:
        _inner(args.inner)
        return
    with tempfile.TemporaryDirectory(prefix="loadtests-instr-") as tmp:
        trees = {"this tree": ROOT}
        if args.against:
            other = Path(tmp) / "other"
            subprocess.run(["git", "worktree", "add", "-q", "--detach", str(other), args.against], cwd=ROOT, check=True)
            trees[args.against] = other
        try:
            jobs = [(label, tree, name) for name in WORKLOADS for label, tree in trees.items()]
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                counts = list(pool.map(lambda job: measure(job[1], job[2]), jobs))
        finally:
            if args.against:
                subprocess.run(["git", "worktree", "remove", "--force", str(other)], cwd=ROOT, check=False)
    print(f"{'workload':<18}" + "".join(f"{label:>16}" for label in trees))
    for i, name in enumerate(WORKLOADS):
        row = counts[i * len(trees) : (i + 1) * len(trees)]
        print(f"{name:<18}" + "".join(f"{value / 1e3:>14,.0f} k" for value in row))
    print("instructions per placed closure (Lille, batches of 100, or one at a time) and per matched trace point")


if __name__ == "__main__":
    main()
