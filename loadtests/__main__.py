"""`make bench`: every benchmark beside its reference, in one run; prints one table, writes RESULTS.md."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from loadtests import (
    archive,
    chaos,
    closures_load,
    cluster_bench,
    fastmm_ref,
    feeds_load,
    ingest,
    matching,
    writes_split,
)
from loadtests import cluster as clusters
from loadtests.feedwatch import feed_paths
from loadtests.hubproc import Hub
from loadtests.machine import describe
from loadtests.memory import GOAL_MIB, seeded_hub
from loadtests.report import Row, machine_lines, markdown, text_table, verdict

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
STEPS = ("matching", "ingest", "feeds", "writes", "memory", "archive", "cluster", "chaos")
# chaos: `--only chaos`, `make chaos`
DEFAULT_STEPS = ("matching", "ingest", "feeds", "writes", "memory", "archive", "cluster")


def _ingest_rows(rounds: int) -> list[Row]:
    r = ingest.run(rounds)
    ref = r.reference
    return [
        Row(
            "4/17",
            f"connector → Kafka at steady state: NYC Waze partner feed, {r.items:,} items = {r.records:,} records "
            f"per cycle, {r.cycles} cycles, mean {r.mean_record_bytes:,} B (acks=all, idempotent)",
            f"{r.cycle_rps:,.0f} records/s (parse+publish); publish alone {r.publish_rps:,.0f}/s; "
            f"parse {r.parse_s:.2f} s per cycle (load {r.load})",
            f"ProducerPerformance {ref.records_per_s:,.0f} records/s "
            f"({ref.records:,} records of the same mean size, p99 {ref.p99_ms:.0f} ms)",
            f"≥ {ingest.GOAL:.2f}x → {r.ratio:.2f}x",
            verdict(r.ratio >= ingest.GOAL),
        )
    ]


def _feed_rows(loads: list[feeds_load.FeedLoad], events: int) -> list[Row]:
    rows: list[Row] = []
    for f in loads:
        full = f.hub_full.requests_per_s / f.nginx_full.requests_per_s
        nm = f.hub_304.requests_per_s / f.nginx_304.requests_per_s
        rows.append(
            Row(
                "5",
                f"{f.path} at {events:,} events ({f.body_bytes / 1e6:.1f} MB, {f.items:,} items): 200 / 304",
                f"{f.hub_full.requests_per_s:,.0f} / {f.hub_304.requests_per_s:,.0f} req/s "
                f"(p99 {f.hub_full.p99_ms:.0f} / {f.hub_304.p99_ms:.0f} ms)",
                f"nginx static {f.nginx_full.requests_per_s:,.0f} / {f.nginx_304.requests_per_s:,.0f} req/s",
                f"≥ 0.5x → {full:.2f}x / {nm:.2f}x",
                verdict(full >= feeds_load.GOAL and nm >= feeds_load.GOAL),
            )
        )
    return rows


def _chosen(name: str, wanted: set[str]) -> bool:
    if name == "feeds+writes":
        return {"feeds", "writes"} <= wanted
    if name in ("feeds", "writes"):
        return name in wanted and not {"feeds", "writes"} <= wanted
    return name in wanted


def _hub_rows(args: argparse.Namespace, workdir: Path, rows: list[Row], writes: bool = True) -> list[Row]:
    """Appends to `rows` as it goes, so that a later failure keeps the earlier numbers."""
    paths = feed_paths()
    with seeded_hub(args.events, workdir) as (hub, mem):
        loads = feeds_load.load_feeds(hub, paths, args.wrk_seconds)
        rows += _feed_rows(loads, mem.events)
        change = feeds_load.change_latency(hub, f"{hub.prefix}.events", paths, args.samples)
        rows.append(
            Row(
                "5",
                f"new event on the events topic → new bytes in all {len(paths)} feeds (n={change.samples})",
                f"p50 {change.p50_ms:.0f} ms, p99 {change.p99_ms:.0f} ms",
            )
        )
        rows.append(
            Row(
                "5",
                f"feed process RSS at {mem.events:,} events",
                f"{hub.rss_mib():,.0f} MiB (peak {mem.peak_mib:,.0f})",
            )
        )
        if writes and args.writes_layout in ("run", "both"):
            rows += _write_rows(args, hub, paths, ALL_IN_ONE if args.writes_layout == "both" else "")
    if writes and args.writes_layout in ("split", "both"):
        rows += _split_rows(args, workdir)
    return rows


def _write_rows(
    args: argparse.Namespace, hub: Hub, paths: list[str], layout: str = "", cpu: Callable[[], float] | None = None
) -> list[Row]:
    """Closure writes: POST → every feed one at a time, then throughput at each client count, each run
    followed by one closure timed into every feed (the 2 s promise right after a burst).

    The promise checked: a busy but healthy broker never causes a 503 (nor any other refusal: the
    bench posts only what its team may post); a broker that is down gives a 503 with Retry-After
    within 2 s, which tests/faults/test_broker_outage.py checks (a bench cannot stop the broker).
    Every row says the load average: on a shared machine rates and latencies follow it; the hub's CPU
    time per write (the whole pipeline in one process, the drain included) follows it far less.
    """
    rows: list[Row] = []
    # one at a time on a settled hub first: after the throughput run the pipeline still drains its backlog
    seen = closures_load.visible(hub, paths, args.samples, mix=args.measure_mix)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    rows.append(
        Row(
            "7/17",
            f"{layout}POST → closure in all {len(paths)} feeds, one at a time (n={seen.samples})",
            f"p50 {seen.p50_ms:.0f} ms, p99 {seen.p99_ms:.0f} ms (load {load})",
            "",
            f"p99 < {closures_load.GOAL_EVERY_FEED_P99_MS:.0f} ms",
            verdict(seen.p99_ms < closures_load.GOAL_EVERY_FEED_P99_MS),
        )
    )
    pool = closures_load.lille_streets()
    for clients in args.clients:
        tp = closures_load.throughput(
            hub, clients, args.post_seconds, pool=pool, mix=args.measure_mix, paths=paths, cpu=cpu
        )
        refused = closures_load.describe_refused(tp.refused)
        goal = "0 refused (never a 503 while the broker is up)"
        ok = tp.refused_total == 0
        if clients >= 64:
            goal = f"≥ {closures_load.GOAL_PER_S:.0f}/s, p99 < {closures_load.GOAL_P99_MS:.0f} ms, " + goal
            ok = ok and tp.per_s >= closures_load.GOAL_PER_S and tp.p99_ms < closures_load.GOAL_P99_MS
        rows.append(
            Row(
                "7/17",
                f"{layout}POST /api/v1/{'measures (mix of 6 types)' if args.measure_mix else 'closures'}, {tp.clients} "
                f"concurrent clients, {tp.seconds:.0f} s (healthy broker)",
                f"{tp.per_s:,.0f} closures/s accepted ({tp.accepted:,} ok, {refused}), "
                f"p50 {tp.p50_ms:.0f} ms, p99 {tp.p99_ms:.0f} ms; hub CPU {tp.cpu_ms:.1f} ms per write, "
                f"pipeline drain included (load {tp.load})",
                "",
                goal,
                verdict(ok),
            )
        )
        rows.append(
            Row(
                "17",
                f"{layout}a closure posted right after {tp.seconds:.0f} s of {tp.clients} writers → in all "
                f"{len(paths)} feeds",
                f"{tp.after_burst_s:.2f} s (load {tp.load})",
                "",
                f"≤ {closures_load.GOAL_AFTER_BURST_S:.0f} s",
                verdict(tp.after_burst_s <= closures_load.GOAL_AFTER_BURST_S),
            )
        )
    return rows


ALL_IN_ONE = "all-in-one (`traffic-hub run`): "
SPLIT = "api + normaliser processes (compose.yaml): "


def _writes_only_rows(args: argparse.Namespace, workdir: Path) -> list[Row]:
    """`--only writes`: the closure-write rows on a hub seeded like the feed benchmark's (`--events`),
    all-in-one and/or with the API and the normaliser as two processes (`--writes-layout`)."""
    rows: list[Row] = []
    if args.writes_layout in ("run", "both"):
        with seeded_hub(args.events, workdir) as (hub, _):
            rows += _write_rows(args, hub, feed_paths(), ALL_IN_ONE if args.writes_layout == "both" else "")
    if args.writes_layout in ("split", "both"):
        rows += _split_rows(args, workdir)
    return rows


def _split_rows(args: argparse.Namespace, workdir: Path) -> list[Row]:
    with writes_split.split_hub(args.events, workdir) as (hub, processes):
        return _write_rows(args, hub, feed_paths(), SPLIT, lambda: sum(p.cpu_s() for p in processes))


def _memory_rows(count: int, workdir: Path) -> list[Row]:
    with seeded_hub(count, workdir, restart=True) as (_, mem):
        return [
            Row(
                "7",
                f"feed process RSS at {mem.events:,} active events (seed {mem.seed_s:.0f} s, "
                f"ready {mem.ready_s:.0f} s, feeds rendered {mem.settled_s:.0f} s later)",
                f"{mem.rss_mib:,.0f} MiB (peak {mem.peak_mib:,.0f})",
                "",
                f"< {GOAL_MIB:,.0f} MiB",
                verdict(mem.peak_mib < GOAL_MIB),
            ),
            Row(
                "17",
                f"restart after kill -9 at {mem.events:,} events, feeds saved (TRAFFIC_HUB_FEEDS__SNAPSHOT_DIR)",
                f"ready {mem.restart_ready_s:.1f} s, every feed current {mem.restart_settled_s:.1f} s later "
                f"(first start: {mem.settled_s:.0f} s)",
                "the first start, same run",
                "≤ 15 s after the view",
                verdict(mem.restart_settled_s <= 15.0),
            ),
        ]


def _matching_rows(traces: int, closures: int) -> list[Row]:
    out: list[Row] = []
    for sized in matching.run(traces, closures):
        r = sized.row
        held = r.rss_mib - sized.base_mib  # network + every cache, after all the traces above
        measured = (
            f"{r.warm_pps:,.0f} pts/s per core on unseen traces (cold {r.cold_pps:,.0f}, batch {r.batch_pps:,.0f}); "
            f"{r.within_5m:.1%} within 5 m; closures/s per core: {r.closures_cold_ps:,.0f} cold, "
            f"{r.closures_ps:,.0f} warm one at a time, {r.closures_batch_ps:,.0f} batched "
            f"({r.closure_batch} per batch); network + caches {held:,.0f} MiB after every trace and closure above"
        )
        ok = r.warm_pps >= 20_000 and r.within_5m >= 0.98 and r.closures_batch_ps >= 2_000 and held < 1024
        reference = ""
        goal = "≥ 20,000 pts/s, ≥ 98 %, ≥ 2,000 closures/s, < 1 GiB"
        if r.fmm is not None:
            f = r.fmm
            measured += f"; paired with fastmm: {r.paired_pps:,.0f} pts/s (load {r.load})"
            reference = (
                f"fastmm 0.3.2 {f.pps:,.0f} pts/s per core, {f.within_5m:.1%} within 5 m "
                f"(UBODT δ {fastmm_ref.UBODT_DELTA_M:.0f} m: {f.build_s:.1f} s, +{f.build_mib:,.0f} MiB)"
            )
            goal = f"≥ 0.5x fastmm → {r.ratio:.2f}x; " + goal
            ok = ok and r.ratio >= 0.5
        else:
            measured += f"; network file built in {sized.build_s:.0f} s, loaded in {r.load_s:.1f} s, " + (
                f"{sized.loaded_mib - sized.base_mib:,.0f} MiB loaded"
            )
        out.append(
            Row(
                "3/17",
                f"map matching, {r.network} ({r.edges:,} edges, {r.points:,} points)",
                measured,
                reference,
                goal,
                verdict(ok),
            )
        )
    return out


def _cluster_rows(args: argparse.Namespace, workdir: Path, rows: list[Row]) -> list[Row]:
    """Issue 16 on the three-node cluster (started if it is not running, stopped again if started here)."""
    machine, started = describe(), time.monotonic()
    cluster = clusters.ensure_up()
    try:
        out = cluster_bench.rows(cluster, workdir, args.cluster_reports, args.samples)
    finally:
        clusters.stop(cluster)
    if args.only is not None and not args.no_write:  # `--only cluster`: its own section of RESULTS.md
        took = time.monotonic() - started
        cluster_bench.write_section(cluster_bench.section(out, machine.command, machine.date, machine.load, took))
    return out


def _chaos_rows(args: argparse.Namespace) -> list[Row]:
    """The chaos run (loadtests/chaos.py): its own table in RESULTS.md, one row per fault here."""
    report = chaos.run(chaos.Config(faults=chaos.SHORT if args.chaos_short else list(chaos.FAULTS)))
    print(chaos.text_table(report), file=sys.stderr)
    if not args.no_write:
        chaos.write_section(report)
    return chaos.bench_rows(report)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__)
    parser.add_argument("--events", type=int, default=10_000, help="active events for the feed benchmark")
    parser.add_argument("--memory-events", type=int, default=100_000, help="active events for the memory benchmark")
    parser.add_argument("--wrk-seconds", type=int, default=4)
    parser.add_argument("--samples", type=int, default=50, help="change → feed samples, and POST → feed samples "
                        "(p99 of 20 is the maximum)")
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[32, 64], help="concurrent POST clients, one run per count"
    )
    parser.add_argument("--post-seconds", type=float, default=10.0, help="writes: seconds of each client count's run")
    parser.add_argument("--rounds", type=int, default=3, help="connector and ProducerPerformance rounds")
    parser.add_argument("--traces", type=int, default=100)
    parser.add_argument("--closures", type=int, default=400)
    parser.add_argument("--cluster-reports", type=int, default=1500, help="backlog of the normaliser rows (cluster)")
    parser.add_argument("--chaos-short", action="store_true", help="chaos: only controller, normaliser, api")
    parser.add_argument("--archive-scale", type=float, default=0.05,
                        help="the synthetic archive year's share of MEL's estimated Waze volume (1 = ~6.9 M events)")
    parser.add_argument("--archive-burst", type=int, default=20_000, help="records the archiver catches up on")
    parser.add_argument("--archive-seconds", type=float, default=10.0, help="steady load for the archiver's lag")
    parser.add_argument("--impact-days", type=int, default=60,
                        help="days of Waze jams at MEL's full density for the analytics rows (0: none; ≥ 60)")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--writes-layout", choices=("run", "split", "both"), default="both",
                        help="writes: the all-in-one hub (`traffic-hub run`, as `make run`), the API and the "
                        "normaliser as two processes (compose.yaml), or both")
    parser.add_argument("--measure-mix", action="store_true",
                        help="writes: post a mix of measure types through /api/v1/measures (issue 18)")
    parser.add_argument(
        "--only",
        choices=STEPS,
        nargs="+",
        help="run only these sections (writes: the closure-write rows alone; chaos is run only when named); "
        "RESULTS.md is then left as it is, except the chaos run's and the cluster rows' own sections",
    )
    return parser


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds every `finally`: hubs and nginx stop, bench topics go


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    machine = describe()
    started = time.monotonic()
    rows: list[Row] = []
    notes: list[str] = []
    wanted = set(args.only or DEFAULT_STEPS)
    with tempfile.TemporaryDirectory(prefix="loadtests-") as tmp:
        workdir = Path(tmp)
        every: list[tuple[str, Callable[[], list[Row]]]] = [
            ("matching", lambda: _matching_rows(args.traces, args.closures)),
            ("ingest", lambda: _ingest_rows(args.rounds)),
            # one seeded hub serves both the feed and the write rows when both are wanted
            ("feeds+writes", lambda: _hub_rows(args, workdir, rows)),
            ("feeds", lambda: _hub_rows(args, workdir, rows, writes=False)),
            ("writes", lambda: _writes_only_rows(args, workdir)),
            ("memory", lambda: _memory_rows(args.memory_events, workdir)),
            ("archive", lambda: archive.run(args.archive_scale, args.archive_burst, args.archive_seconds,
                                                 args.impact_days)),
            ("cluster", lambda: _cluster_rows(args, workdir, rows)),
            ("chaos", lambda: _chaos_rows(args)),
        ]
        steps = [(name, step) for name, step in every if _chosen(name, wanted)]
        for name, step in steps:
            step_started = time.monotonic()
            print(f"[loadtests] {name} …", file=sys.stderr, flush=True)
            try:
                done = step()
                if done is not rows:
                    rows += done
            except Exception as exc:  # one broken benchmark must not hide the others' numbers
                rows.append(Row("-", f"{name}: FAILED", f"{type(exc).__name__}: {exc}"[:300], verdict="MISSED"))
            notes.append(f"{name}: {time.monotonic() - step_started:.0f} s")
    notes.append(f"total: {time.monotonic() - started:.0f} s")
    print(machine_lines(machine))
    print(text_table(rows))
    if not args.no_write and args.only is None:
        RESULTS.write_text(markdown(rows, machine, notes) + chaos.kept_section(RESULTS), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
