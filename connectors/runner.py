"""The shared connector runner: one task per source, each cycle fetch → keep raw → parse → publish.

A cycle of one connector:
1. conditional GET (`connectors.fetch`); `304` ends the cycle quietly;
2. in a worker thread: the raw payload becomes a FETCH report (audit and replay), the parser turns
   it into incidents and rejects, and the changes against the previous payload are planned
   (unchanged items are not re-sent; items gone from a snapshot get an `ended` report);
3. the batch (FETCH report, incident reports, dead letters) is written; only once Kafka
   acknowledged it does the connector's memory and state move on. When Kafka is unavailable the
   same batch is retried later, with backoff. A record Kafka refuses for good (`WriteRejected`: too
   large, invalid) is never retried: it is replaced by a dead letter (capped in size, so it fits), or
   dropped with a logged reason when even that is refused, and the batch goes on, so one bad
   payload can never hold a connector on the same batch forever.

Failures (HTTP errors, timeouts, a body over the limit, a payload the parser refuses, a parser that
crashes) are recorded in the connector's state and retried with exponential backoff and jitter; a
connector's failure never touches the others, and nothing here lets an exception end the runner.

Alone (`traffic-hub run`), the runner polls every enabled source from the start. Shared with other
runners (`traffic-hub connectors`, given a `Handover`), it polls only the sources it is handed
(`acquire`, by the group's leases in `traffic_hub/kafka/leases.py`) and gives them back on `release`,
which returns only once no cycle of those sources runs any more (an in-flight cycle may finish within
`RELEASE_GRACE_S`, else it is cancelled): two runners never poll one source at once. A taken-over
source starts from the memory its last owner wrote after its last acknowledged cycle
(`connectors/handover.py`), and is first polled when its last owner would have polled it next.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import logging
import random
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

import httpx2
import orjson

from connectors.base import ParseContext, Parsed, Parser, PayloadError
from connectors.collector import collector_paused
from connectors.config import ConnectorConfig
from connectors.encoding import content_hash, incident_report
from connectors.fetch import FetchError, FetchResult, TooLarge, Validators, fetch, make_client
from connectors.handover import Handover, Saved, new_generation, read_saved, state_records, status_record
from connectors.registry import parser_for as registry_parser_for
from connectors.state import ConnectorState, public_url
from traffic_hub.model import IncidentReport, Report, ReportKind
from traffic_hub.publishing import Record, RecordSink, Topics, Unavailable, WriteRejected, dead_letter

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ParserFor = Callable[[str], Parser]

AUDIT_LIMIT = 900_000  # bytes of raw payload kept in one FETCH report (the producer's request limit is 2 MiB)
CHUNK = 200  # records per acknowledged write
KAFKA_RETRY_CAP_S = 30.0  # a batch waiting for the broker is retried at least this often (or once per interval)
RELEASE_GRACE_S = 3.0  # a released source's in-flight cycle may finish within this, else it is cancelled
LOAD_TIMEOUT_S = 15.0  # reading a taken-over source's saved state, per attempt (retried until read)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with equal jitter: failure n waits in [d/2, d], d = min(cap, base·2^(n-1)).

    `base` is never longer than the connector's interval, `cap` never shorter.
    """

    base_s: float = 5.0
    cap_s: float = 600.0

    def bounds(self, failures: int, interval_s: float) -> tuple[float, float]:
        base = min(self.base_s, interval_s)
        cap = max(self.cap_s, interval_s)
        ceiling = min(cap, base * 2.0 ** min(max(failures, 1) - 1, 60))
        return ceiling / 2, ceiling

    def delay(self, failures: int, interval_s: float, rng: random.Random) -> float:
        low, high = self.bounds(failures, interval_s)
        return rng.uniform(low, high)

    def honour(self, delay: float, retry_after_s: float | None, interval_s: float) -> float:
        """A server's Retry-After lengthens the delay, up to the cap."""
        if retry_after_s is None:
            return delay
        return max(delay, min(retry_after_s, max(self.cap_s, interval_s)))


def audit_payload(body: bytes, limit: int = AUDIT_LIMIT) -> dict[str, Any]:
    """The raw payload for the FETCH report: text, else gzip+base64, else only its hash and size."""
    fields: dict[str, Any] = {"bytes": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    text = None
    if len(body) + 2 <= limit:  # else the JSON string (quoted, escaped) cannot fit: not worth decoding
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is not None and len(orjson.dumps(text)) <= limit:
        return {**fields, "raw": text, "encoding": "utf-8", "truncated": False}
    packed = base64.b64encode(gzip.compress(body, compresslevel=6, mtime=0)).decode()
    if len(packed) <= limit:
        return {**fields, "raw": packed, "encoding": "gzip+base64", "truncated": False}
    return {**fields, "raw": None, "encoding": None, "truncated": True}


def raw_from_audit(payload: Mapping[str, Any]) -> bytes | None:
    """The bytes a FETCH report kept (for replay); None when it was too big to keep."""
    raw = payload.get("raw")
    if not isinstance(raw, str):
        return None
    if payload.get("encoding") == "gzip+base64":
        return gzip.decompress(base64.b64decode(raw))
    return raw.encode("utf-8")


@dataclass(frozen=True, slots=True)
class Memory:
    """What a connector remembers of its last acknowledged payload."""

    seen: Mapping[str, IncidentReport] = field(default_factory=dict)  # items still current, by source id
    hashes: Mapping[str, str] = field(default_factory=dict)  # content hash of what was last sent, by source id


@dataclass(frozen=True, slots=True)
class Plan:
    """The records of one cycle and what to remember once they are acknowledged."""

    records: list[Record]
    memory: Memory
    incidents: int = 0
    ended: int = 0
    rejects: int = 0
    error: str | None = None  # the payload was refused (dead-lettered): the cycle counts as failed


def plan_cycle(
    parser: Parser,
    result: FetchResult,
    ctx: ParseContext,
    memory: Memory,
    topics: Topics,
    url: str,
    full_refresh: bool = False,
) -> Plan:
    """Everything a fetched payload turns into (CPU work: run it in a thread). Never raises on bad data.

    A payload over `AUDIT_LIMIT` is compressed for its FETCH report in a second thread while it is
    parsed: zlib releases the GIL, and on the 1.7 MB NYC Waze sample the compression was 7 % of a cycle.
    The cyclic garbage collector is paused meanwhile (`connectors.collector`: it was over a third of
    the cycle's CPU time on that sample, traversing objects that all live until the cycle ends).
    """
    with collector_paused():
        if len(result.body) <= AUDIT_LIMIT:
            fetch_report = _fetch_report(result, ctx, url, topics)
            return _planned(parser, result, ctx, memory, topics, full_refresh, fetch_report)
        with ThreadPoolExecutor(1, thread_name_prefix=f"audit-{ctx.source}") as pool:
            future = pool.submit(_fetch_report, result, ctx, url, topics)
            return _planned(parser, result, ctx, memory, topics, full_refresh, future)


def _planned(
    parser: Parser,
    result: FetchResult,
    ctx: ParseContext,
    memory: Memory,
    topics: Topics,
    full_refresh: bool,
    fetch_report: Record | Future[Record],
) -> Plan:
    try:
        parsed = parser.parse(result.body, ctx)
    except PayloadError as exc:
        return _refused(_result(fetch_report), result.body, ctx, memory, topics, f"payload error: {exc}")
    except Exception as exc:  # a parser bug must not end the runner; the payload is kept for replay
        log.exception("connector %s: parser %s crashed", ctx.source, parser.kind)
        reason = f"parser failed: {type(exc).__name__}: {exc}"
        return _refused(_result(fetch_report), result.body, ctx, memory, topics, reason)
    return _plan_parsed(parsed, _result(fetch_report), ctx, memory, topics, full_refresh)


def _result(record: Record | Future[Record]) -> Record:
    return record.result() if isinstance(record, Future) else record


def _fetch_report(result: FetchResult, ctx: ParseContext, url: str, topics: Topics) -> Record:
    payload = {
        "url": url,
        "status": result.status,
        "etag": result.validators.etag,
        "last_modified": result.validators.last_modified,
        "content_type": result.content_type,
        **audit_payload(result.body),
    }
    report = Report(
        key=ctx.source, kind=ReportKind.FETCH, source=ctx.source, received_at=ctx.received_at, payload=payload
    )
    return _report_record(topics, report)


def _report_record(topics: Topics, report: Report) -> Record:
    return Record(topics.reports, key=report.key.encode(), value=report.model_dump_json().encode())


def _refused(fetch_report: Record, body: bytes, ctx: ParseContext, memory: Memory, topics: Topics, reason: str) -> Plan:
    letter = dead_letter(topics, stage="connector", source=ctx.source, reason=reason, raw=body, key=ctx.source)
    return Plan([fetch_report, letter], memory, error=reason)


def _plan_parsed(
    parsed: Parsed, fetch_report: Record, ctx: ParseContext, memory: Memory, topics: Topics, full_refresh: bool
) -> Plan:
    current: dict[str, tuple[IncidentReport, str]] = {}
    for incident in parsed.incidents:  # one source id once per payload: the last one wins
        current[incident.source_id] = (incident, content_hash(incident))
    send = [inc for sid, (inc, digest) in current.items() if full_refresh or memory.hashes.get(sid) != digest]
    ended = _gone(memory, current) if parsed.snapshot else []
    records = [fetch_report]
    records += [_incident_record(topics, ctx, incident) for incident in send + ended]
    records += [_reject_record(topics, ctx, reject.reason, reject.raw, reject.source_id) for reject in parsed.rejects]
    next_memory = _remember(memory, current, parsed.snapshot)
    return Plan(records, next_memory, incidents=len(send), ended=len(ended), rejects=len(parsed.rejects))


def _gone(memory: Memory, current: Mapping[str, tuple[IncidentReport, str]]) -> list[IncidentReport]:
    """Items of the last snapshot missing from this one: their last report, ended."""
    return [last.model_copy(update={"ended": True}) for sid, last in memory.seen.items() if sid not in current]


def _remember(memory: Memory, current: Mapping[str, tuple[IncidentReport, str]], snapshot: bool) -> Memory:
    if snapshot:
        seen = {sid: inc for sid, (inc, _) in current.items() if not inc.ended}
        return Memory(seen, {sid: digest for sid, (_, digest) in current.items()})
    seen = {sid: inc for sid, inc in memory.seen.items() if sid not in current}
    seen.update({sid: inc for sid, (inc, _) in current.items() if not inc.ended})
    # a delta source: keep hashes of what is current or was just sent; forget ended items no longer listed
    hashes = {sid: digest for sid, digest in memory.hashes.items() if sid in seen}
    hashes.update({sid: digest for sid, (_, digest) in current.items()})
    return Memory(seen, hashes)


def _incident_record(topics: Topics, ctx: ParseContext, incident: IncidentReport) -> Record:
    """The INCIDENT report of `incident`, written without building the `Report` (`connectors.encoding`)."""
    key = f"{ctx.source}:{incident.source_id}"
    return Record(topics.reports, key=key.encode(), value=incident_report(key, ctx.source, ctx.received_at, incident))


def _reject_record(topics: Topics, ctx: ParseContext, reason: str, raw: bytes, source_id: str) -> Record:
    key = f"{ctx.source}:{source_id}" if source_id else ctx.source
    return dead_letter(topics, stage="connector", source=ctx.source, reason=f"rejected: {reason}", raw=raw, key=key)


@dataclass
class _Batch:
    """A plan being written; `sent` records are acknowledged already (a retry resumes after them)."""

    plan: Plan
    validators: Validators
    body_bytes: int
    sent: int = 0
    refused: int = 0  # records Kafka refused for good, replaced by dead letters
    dropped: int = 0  # records dropped because even their dead letter was refused


@dataclass
class _Worker:
    cfg: ConnectorConfig
    parser: Parser
    state: ConnectorState
    validators: Validators = field(default_factory=Validators)
    memory: Memory = field(default_factory=Memory)
    cycles: int = 0
    pending: _Batch | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)  # set between cycles (a release waits for it)
    saved: Saved | None = None  # the state last written for this source (its parts are replaced next time)
    unsaved: list[Saved] = field(default_factory=list)  # writes that failed: their parts are removed next time
    dirty: bool = False  # the memory moved on since the last state written


class ConnectorRunner:
    """Runs every enabled connector until the context exits. `states()` feeds the API and /metrics."""

    def __init__(
        self,
        configs: Sequence[ConnectorConfig],
        client: httpx2.AsyncClient,
        publisher: RecordSink,
        topics: Topics,
        *,
        parser_for: ParserFor,
        clock: Clock = utc_now,
        backoff: Backoff | None = None,
        full_refresh_every: int = 30,
        rng: random.Random | None = None,
        parse_concurrency: int = 2,
        handover: Handover | None = None,
        instance: str | None = None,
    ) -> None:
        self._configs = list(configs)
        self._handover = handover
        self._instance = handover.instance if handover is not None else instance
        self._client = client
        self._publisher = publisher
        self._topics = topics
        self._parser_for = parser_for
        self._clock = clock
        self._backoff = backoff or Backoff()
        self._full_refresh_every = max(1, full_refresh_every)
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._parse_slots = asyncio.Semaphore(parse_concurrency)
        shared = handover is not None
        self._states = {cfg.name: _initial_state(cfg, self._instance, held=not shared) for cfg in self._configs}
        self._held: dict[str, tuple[_Worker, asyncio.Task[None]]] = {}

    def states(self) -> list[ConnectorState]:
        return list(self._states.values())

    def state(self, name: str) -> ConnectorState:
        return self._states[name]

    @property
    def names(self) -> list[str]:
        """Every configured source, enabled or not (what the leases share out)."""
        return [cfg.name for cfg in self._configs]

    def held(self) -> list[str]:
        """The sources this runner polls now."""
        return sorted(self._held)

    async def __aenter__(self) -> ConnectorRunner:
        if self._handover is None:  # alone: every source, from the start
            for cfg in self._configs:
                worker = self._worker(cfg)
                if worker is not None:
                    self._hold(worker, self._run(worker))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        held, self._held = list(self._held.values()), {}
        for _, task in held:
            task.cancel()
        await asyncio.gather(*(task for _, task in held), return_exceptions=True)

    async def acquire(self, names: Sequence[str]) -> None:
        """Start polling `names` (sources this runner does not know or already polls are skipped)."""
        by_name = {cfg.name: cfg for cfg in self._configs}
        for name in names:
            cfg = by_name.get(name)
            if cfg is None:
                log.warning("connector %s: handed to this runner but not in its connectors file; ignored", name)
                continue
            worker = None if name in self._held else self._worker(cfg)
            if worker is not None:
                worker.state.runner, worker.state.held = self._instance, True
                self._hold(worker, self._take(worker))
        if names:
            log.info("connectors: polling %s", ", ".join(sorted(self._held)) or "nothing")

    async def release(self, names: Sequence[str]) -> None:
        """Stop polling `names`; returns once none of their cycles runs (see `RELEASE_GRACE_S`)."""
        going = [(name, *self._held.pop(name)) for name in names if name in self._held]
        await asyncio.gather(*(_let_go(worker, task) for _, worker, task in going))
        for _, worker, _ in going:
            worker.state.runner, worker.state.held, worker.state.next_run_at = None, False, None
        if going:
            log.info("connectors: released %s", ", ".join(name for name, _, _ in going))

    def _hold(self, worker: _Worker, run: Coroutine[Any, Any, None]) -> None:
        worker.idle.set()
        task = asyncio.create_task(run, name=f"connector-{worker.cfg.name}")
        self._held[worker.cfg.name] = (worker, task)

    async def _take(self, worker: _Worker) -> None:
        """A source handed over: read its saved memory, wait until it is due, then run it as usual."""
        saved = await self._load(worker, self._handover) if self._handover is not None else None
        delay = 0.0
        if saved is not None:
            self._resume(worker, saved)
            if saved.polled_at is not None:
                due = saved.polled_at + timedelta(seconds=worker.cfg.interval_s)
                delay = min(max(0.0, (due - self._clock()).total_seconds()), worker.cfg.interval_s)
        worker.state.next_run_at = self._clock() + timedelta(seconds=delay)
        await asyncio.sleep(delay)
        await self._run(worker)

    async def _load(self, worker: _Worker, handover: Handover) -> Saved | None:
        """The source's saved state; retried until the state topic can be read (nothing is polled meanwhile)."""
        delay = 0.5
        while True:
            try:
                async with asyncio.timeout(LOAD_TIMEOUT_S):
                    values = await handover.states.snapshot()
                return await asyncio.to_thread(read_saved, worker.cfg.name, values)
            except (TimeoutError, Unavailable) as exc:
                worker.state.last_error = f"waiting for the source's saved state in Kafka: {exc!r}"
                worker.state.last_error_at = self._clock()
                log.warning("connector %s: %s (retry in %.1f s)", worker.cfg.name, worker.state.last_error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _resume(self, worker: _Worker, saved: Saved) -> None:
        if saved.url == worker.state.url:  # validators of another URL would make a wrong 304
            worker.validators = saved.validators
        worker.memory = Memory(dict(saved.seen), dict(saved.hashes))
        worker.cycles = saved.cycles
        worker.saved = saved
        worker.state.tracked_items = len(saved.seen)
        log.info(
            "connector %s: taken over with %d current items (saved by %s)",
            worker.cfg.name, len(saved.seen), saved.runner or "?",
        )

    async def _save(self, worker: _Worker) -> None:
        """Write the source's memory to the state topic (shared runners only); a failure is retried next cycle."""
        if self._handover is None or not worker.dirty:
            return
        saved = Saved(
            url=worker.state.url,
            validators=worker.validators,
            seen=worker.memory.seen,
            hashes=worker.memory.hashes,
            cycles=worker.cycles,
            polled_at=worker.state.last_attempt,
            runner=self._handover.instance,
            generation=new_generation(),
        )
        stale = [old for old in (worker.saved, *worker.unsaved) if old is not None]
        records, saved = await asyncio.to_thread(state_records, self._handover.topic, worker.cfg.name, saved, stale)
        try:
            await self._publisher.send_many(records)
        except (Unavailable, WriteRejected) as exc:
            worker.unsaved.append(saved)
            log.warning("connector %s: state not saved (retried next cycle): %s", worker.cfg.name, exc)
            return
        worker.saved, worker.unsaved, worker.dirty = saved, [], False

    def _worker(self, cfg: ConnectorConfig) -> _Worker | None:
        state = self._states[cfg.name]
        if not cfg.enabled:
            return None
        try:
            parser = self._parser_for(cfg.kind)
        except (LookupError, ValueError) as exc:
            state.last_error, state.last_error_at = f"no parser for kind {cfg.kind!r}: {exc}", self._clock()
            state.consecutive_failures = 1
            log.error("connector %s: %s", cfg.name, state.last_error)
            return None
        return _Worker(cfg, parser, state)

    async def _run(self, worker: _Worker) -> None:
        while True:
            worker.idle.clear()
            try:
                delay = await self._cycle(worker)
            except Exception as exc:  # a bug in one connector's cycle must not end it nor the runner
                log.exception("connector %s: cycle failed", worker.cfg.name)
                worker.pending = None
                delay = self._failed(worker, f"internal error: {type(exc).__name__}: {exc}")
            finally:
                worker.idle.set()
            worker.state.next_run_at = self._clock() + timedelta(seconds=delay)
            await self._report(worker)
            await asyncio.sleep(delay)

    async def _report(self, worker: _Worker) -> None:
        """Shared runners: the source's status for every API replica (best effort: the next cycle writes it again)."""
        if self._handover is None:
            return
        record = status_record(self._handover.topic, worker.state, self._clock())
        try:
            await self._publisher.send_many([record])
        except (Unavailable, WriteRejected) as exc:
            log.debug("connector %s: status not written: %s", worker.cfg.name, exc)

    async def _cycle(self, worker: _Worker) -> float:
        state = worker.state
        state.last_attempt = self._clock()
        if worker.pending is None:
            state.fetches += 1
            try:
                worker.pending = await self._fetch_and_plan(worker)
            except FetchError as exc:
                return self._failed(worker, exc.reason, exc.retry_after_s)
            if worker.pending is None:
                state.not_modified += 1
                await self._save(worker)  # only when an earlier save failed
                return self._succeeded(worker)
        try:
            await self._write(worker.pending, worker.cfg.name)
        except Unavailable as exc:  # retried no later than the next regular run would have been
            limit = max(worker.cfg.interval_s, KAFKA_RETRY_CAP_S)
            return self._failed(worker, f"Kafka unavailable, batch kept for retry: {exc.detail}", limit_s=limit)
        batch, worker.pending = worker.pending, None
        self._commit(worker, batch)
        await self._save(worker)
        if batch.plan.error is not None:
            return self._failed(worker, batch.plan.error)
        if batch.refused or batch.dropped:  # written, but not as planned: shown as a failure of this cycle
            reason = f"Kafka refused {batch.refused + batch.dropped} record(s) for good: "
            reason += f"{batch.refused} dead-lettered, {batch.dropped} dropped"
            return self._failed(worker, reason)
        return self._succeeded(worker)

    async def _fetch_and_plan(self, worker: _Worker) -> _Batch | None:
        cfg = worker.cfg
        try:
            result = await fetch(self._client, cfg, worker.validators)
        except TooLarge as exc:
            letter = dead_letter(
                self._topics, stage="connector", source=cfg.name, reason=exc.reason, raw=exc.head, key=cfg.name
            )
            return _Batch(Plan([letter], worker.memory, error=exc.reason), worker.validators, 0)
        if result.not_modified:
            worker.validators = result.validators
            return None
        ctx = ParseContext(source=cfg.name, received_at=self._clock(), options=cfg.options)
        full = (worker.cycles + 1) % self._full_refresh_every == 0
        async with self._parse_slots:
            plan = await asyncio.to_thread(
                plan_cycle, worker.parser, result, ctx, worker.memory, self._topics, worker.state.url, full
            )
        return _Batch(plan, result.validators, len(result.body))

    async def _write(self, batch: _Batch, source: str) -> None:
        records = batch.plan.records
        while batch.sent < len(records):
            chunk = records[batch.sent : batch.sent + CHUNK]
            try:
                await self._publisher.send_many(chunk)
            except WriteRejected as exc:
                self._replace_refused(batch, source, exc)
                continue
            batch.sent += len(chunk)

    def _replace_refused(self, batch: _Batch, source: str, exc: WriteRejected) -> None:
        """Refused records of the current chunk become dead letters; refused dead letters are dropped."""
        records = batch.plan.records
        for index in sorted(exc.indexes, reverse=True):
            position = batch.sent + index
            record = records[position]
            if record.topic == self._topics.deadletter:
                del records[position]
                batch.dropped += 1
                log.error("connector %s: dead letter dropped, Kafka refused it too: %s", source, exc.detail)
                continue
            reason = f"record for {record.topic} (key {record.key[:200]!r}) refused by Kafka: {exc.detail}"
            raw = record.value or b""
            records[position] = dead_letter(
                self._topics, stage="connector", source=source, reason=reason, raw=raw, key=source
            )
            batch.refused += 1
            log.warning("connector %s: %s; dead-lettered", source, reason)

    def _commit(self, worker: _Worker, batch: _Batch) -> None:
        """The batch is acknowledged: the connector's memory and counts move on."""
        plan, state = batch.plan, worker.state
        worker.validators = batch.validators
        worker.memory = plan.memory
        worker.cycles += 1
        state.incidents_published += plan.incidents
        state.ended_published += plan.ended
        state.rejects += plan.rejects
        state.bytes_fetched += batch.body_bytes
        state.refused_records += batch.refused
        state.dropped_records += batch.dropped
        state.tracked_items = len(plan.memory.seen)
        worker.dirty = True
        if plan.error is not None:  # the whole payload was refused and dead-lettered
            state.payload_errors += 1

    def _succeeded(self, worker: _Worker) -> float:
        state = worker.state
        state.last_success = self._clock()
        state.consecutive_failures = 0
        state.backoff_s = None
        return worker.cfg.interval_s

    def _failed(
        self, worker: _Worker, reason: str, retry_after_s: float | None = None, limit_s: float | None = None
    ) -> float:
        state, interval = worker.state, worker.cfg.interval_s
        state.failures += 1
        state.consecutive_failures += 1
        state.last_error, state.last_error_at = reason, self._clock()
        delay = self._backoff.delay(state.consecutive_failures, interval, self._rng)
        delay = self._backoff.honour(delay, retry_after_s, interval)
        if limit_s is not None:
            delay = min(delay, limit_s)
        state.backoff_s = delay
        log.warning("connector %s: %s (retry in %.1f s)", worker.cfg.name, reason, delay)
        return delay


def _initial_state(cfg: ConnectorConfig, instance: str | None, held: bool) -> ConnectorState:
    """A shared runner holds no source until the leases hand it some; a lone one holds them all."""
    return ConnectorState(
        name=cfg.name,
        kind=cfg.kind,
        url=public_url(cfg.url),
        enabled=cfg.enabled,
        interval_s=cfg.interval_s,
        runner=instance if held else None,
        held=held,
    )


async def _let_go(worker: _Worker, task: asyncio.Task[None]) -> None:
    """Let an in-flight cycle finish (within the grace), then end the source's task and wait for it."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(RELEASE_GRACE_S):
            await worker.idle.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@contextlib.asynccontextmanager
async def running_connectors(
    configs: Sequence[ConnectorConfig],
    publisher: RecordSink,
    topics: Topics,
    parser_for: ParserFor | None = None,
    *,
    handover: Handover | None = None,
    instance: str | None = None,
) -> AsyncIterator[ConnectorRunner]:
    """The runner with its own HTTP client, for `traffic-hub connectors` and `traffic-hub run`.

    `parser_for` defaults to `connectors.registry.parser_for` (every source kind of the contract).
    With a `handover` the runner shares the sources with others: it polls what it is handed.
    """
    lookup = parser_for or registry_parser_for
    async with (
        make_client() as client,
        ConnectorRunner(
            configs, client, publisher, topics, parser_for=lookup, handover=handover, instance=instance
        ) as runner,
    ):
        yield runner
