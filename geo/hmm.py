"""Hidden-Markov map matching (Newson & Krumm 2009) over a routing :class:`geo.routing.Layer`.

States are candidate positions on directed edges near each input point (at most ``k`` road
pieces within ``radius`` metres, each in every direction the layer allows). Emission: Gaussian
in the point-to-road distance. Transition: exponential in ``|route length − straight distance|``,
route lengths from bounded, cached Dijkstra (:meth:`Layer.distances`), computed for all steps
of a trace in one vectorised call. Viterbi keeps going after a break (no transition possible, or
a point with no candidate): the trace is then matched in several parts, never refused whole.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import ModuleType
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
import shapely

from geo.arrays import BoolArray, FloatArray, IntArray
from geo.network import RoadNetwork
from geo.pathrows import BoundedRows, DenseRows
from geo.routing import DEFAULT_LIMIT_M, Layer

SIGMA_M = 10.0
BETA_M = 5.0
REVERSE_TOLERANCE_M = 10.0
MAX_ROUTE_M = 20_000.0
LIMIT_TIERS = (DEFAULT_LIMIT_M, 3_000.0, 6_000.0, MAX_ROUTE_M)


@dataclass(frozen=True)
class Candidates:
    """Candidate states, grouped by input point (``point`` is non-decreasing)."""

    point: IntArray
    state: IntArray
    offset: FloatArray
    dist: FloatArray


class Step(NamedTuple):
    """One matched input point."""

    point: int
    state: int
    offset: float
    dist: float


def cumlen(xy: FloatArray) -> FloatArray:
    """Distance from the start at each vertex of a polyline."""
    out = np.zeros(len(xy))
    np.cumsum(np.hypot(np.diff(xy[:, 0]), np.diff(xy[:, 1])), out=out[1:])
    return out


def dedupe(xy: FloatArray, eps: float = 1e-9) -> FloatArray:
    """A polyline without consecutive repeated vertices."""
    keep = np.ones(len(xy), dtype=bool)
    keep[1:] = (np.abs(np.diff(xy[:, 0])) > eps) | (np.abs(np.diff(xy[:, 1])) > eps)
    return xy[keep]


def _starts(values: IntArray) -> IntArray:
    """Indexes where a run of equal values starts."""
    keep = np.ones(len(values), dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return np.flatnonzero(keep)


def candidates(net: RoadNetwork, layer: Layer, pts: FloatArray, radius: float, k: int) -> Candidates:
    """Up to ``k`` nearest road pieces within ``radius`` of each point, in every allowed direction
    (by the compiled search when the layer has it, :func:`geo.compiled.candidates`: same result)."""
    kernels = layer.rows.kernels
    if kernels is not None:
        grid = net.grid
        point, state, offset, dist = kernels.candidates(
            grid.columns, grid.frame, net.twin, layer.back_state, net.length, pts, radius, k
        )
        return Candidates(point, state, offset, dist)
    return candidates_numpy(net, layer, pts, radius, k)


def candidates_numpy(net: RoadNetwork, layer: Layer, pts: FloatArray, radius: float, k: int) -> Candidates:
    """:func:`candidates` in numpy calls over :class:`geo.nearby.SegmentGrid` (the reference and fallback)."""
    near = net.grid.query(pts, radius)
    starts = _starts(near.point)
    rank = np.arange(len(near.point)) - np.repeat(starts, np.diff(np.append(starts, len(near.point))))
    keep = rank < k
    pi, edges, dist, offset = near.point[keep], near.edge[keep], near.dist[keep], near.offset[keep]
    other = np.where(net.twin[edges] >= 0, net.twin[edges], layer.back_state[edges])
    has_other = other >= 0
    length = net.length[edges]
    point = np.concatenate([pi, pi[has_other]])
    order = np.argsort(point, kind="stable")
    return Candidates(
        point=point[order],
        state=np.concatenate([edges, other[has_other]])[order],
        offset=np.maximum(np.concatenate([offset, (length - offset)[has_other]])[order], 0.0),
        dist=np.concatenate([dist, dist[has_other]])[order],
    )


def _groups(point: IntArray) -> tuple[IntArray, IntArray]:
    starts = _starts(point)
    return starts, np.diff(np.append(starts, len(point)))


def _pairs(starts: IntArray, counts: IntArray, same: BoolArray) -> tuple[IntArray, IntArray, IntArray]:
    """All (a, b) candidate pairs of consecutive groups ``g, g+1`` where ``same[g]``; and ``g``."""
    steps = np.flatnonzero(same)
    na, nb = counts[steps], counts[steps + 1]
    sizes = na * nb
    step = np.repeat(steps, sizes)
    local = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    nbs = np.repeat(nb, sizes)
    a = starts[step] + local // nbs
    b = starts[step + 1] + local % nbs
    return step, a, b


def route_lengths(
    layer: Layer, c: Candidates, a: IntArray, b: IntArray, gc: FloatArray, far: FloatArray | None = None
) -> FloatArray:
    """Road distance from candidate ``a`` to candidate ``b`` (inf when too far).

    Routes are searched up to 1500 m for steps shorter than 500 m (a trace), further for longer
    steps (the few vertices of a drawn closure), in tiers so that cached rows are reused. In a
    batch, ``far`` gives each pair the longer limit of its own trace (see :func:`_far`), so that
    a trace is matched alike alone or with others."""
    sa, sb = c.state[a], c.state[b]
    ta, tb = c.offset[a], c.offset[b]
    along = (sa == sb) & (tb >= ta - REVERSE_TOLERANCE_M)
    limit: float | FloatArray = DEFAULT_LIMIT_M
    if far is not None:
        limit = np.where(gc <= DEFAULT_LIMIT_M / 3, DEFAULT_LIMIT_M, far)
    elif (one := _tier(2.0 * float(gc.max(initial=0.0)) + 300.0)) > DEFAULT_LIMIT_M:
        limit = np.where(gc <= DEFAULT_LIMIT_M / 3, DEFAULT_LIMIT_M, one)
    between = layer.distances(layer.v[sa], layer.u[sb], limit)
    return np.where(along, np.maximum(tb - ta, 0.0), (layer.length[sa] - ta) + between + tb)


def _tier(limit: float) -> float:
    """Round a search limit up to a few fixed sizes, so that cached Dijkstra rows are reused."""
    for tier in LIMIT_TIERS:
        if limit <= tier:
            return tier
    return LIMIT_TIERS[-1]


def _far(gstep: FloatArray, same: BoolArray, row: IntArray, rows: int) -> FloatArray:
    """The longer search limit of each row (trace), from the straight distances ``gstep`` between
    its consecutive points (``same``: both in row ``row``): :func:`_tier` of its longest step."""
    longest = np.zeros(rows)
    np.maximum.at(longest, row[same], gstep[same])
    tiers = np.asarray(LIMIT_TIERS)
    return tiers[np.minimum(np.searchsorted(tiers, 2.0 * longest + 300.0, side="left"), len(tiers) - 1)]


@dataclass(frozen=True)
class _Batch:
    """Groups (points with candidates) laid out as rows (traces) × columns (their order)."""

    starts: IntArray  # first candidate of each group
    counts: IntArray  # candidates per group
    first: IntArray  # first group of each row
    size: IntArray  # groups per row
    trace: IntArray  # trace of each row
    row: IntArray  # row of each group
    col: IntArray  # column of each group


def _batch(c: Candidates, trace_of: IntArray, n_traces: int) -> _Batch:
    starts, counts = _groups(c.point)
    if n_traces == 1:  # the normaliser's case: one report at a time
        n = len(starts)
        zero = np.zeros(1, dtype=np.int64)
        return _Batch(starts, counts, zero, np.asarray([n]), zero, np.zeros(n, dtype=np.int64), np.arange(n))
    gtrace = trace_of[c.point[starts]]
    first = _starts(gtrace)
    size = np.diff(np.append(first, len(starts)))
    row = np.repeat(np.arange(len(first)), size)
    return _Batch(starts, counts, first, size, gtrace[first], row, np.arange(len(starts)) - first[row])


def _pad(emis: FloatArray, trans: FloatArray, size: IntArray) -> None:
    """Columns past the end of a shorter trace: neutral emissions, identity transitions."""
    cols, width = emis.shape[1], emis.shape[2]
    emis[np.arange(cols)[None, :] >= size[:, None]] = 0.0
    trans[np.arange(cols - 1)[None, :] >= size[:, None] - 1] = np.where(np.eye(width, dtype=bool), 0.0, -np.inf)


def viterbi(c: Candidates, pts: FloatArray, trace_of: IntArray, n_traces: int, layer: Layer) -> list[list[list[Step]]]:
    """Most likely candidate sequence of each trace, cut into parts where no transition exists.

    All traces of a batch go through the forward pass in lock-step (one numpy step per column)."""
    out: list[list[list[Step]]] = [[] for _ in range(n_traces)]
    if len(c.point) == 0:
        return out
    if isinstance(layer.rows, BoundedRows):
        return _viterbi_compiled(c, pts, trace_of, n_traces, layer.rows, layer)
    if isinstance(layer.rows, DenseRows) and layer.rows.kernels is not None:
        return _viterbi_table(c, pts, trace_of, n_traces, layer.rows.kernels, layer.rows.table, layer)
    g = _batch(c, trace_of, n_traces)
    rows, cols, width = len(g.first), int(g.size.max()), int(g.counts.max())
    group = np.repeat(np.arange(len(g.starts)), g.counts)
    rank = np.arange(len(c.point)) - g.starts[group]
    emis = np.full((rows, cols, width), -np.inf)
    trans = np.full((rows, max(cols - 1, 0), width, width), -np.inf)
    if rows > 1:
        _pad(emis, trans, g.size)
    emis[g.row[group], g.col[group], rank] = -0.5 * (c.dist / SIGMA_M) ** 2
    gpts = c.point[g.starts]
    same = g.row[:-1] == g.row[1:]
    step, a, b = _pairs(g.starts, g.counts, same)
    gx, gy = pts[gpts, 0], pts[gpts, 1]
    gstep = np.hypot(gx[1:] - gx[:-1], gy[1:] - gy[:-1])
    gc = gstep[step]
    far = _far(gstep, same, g.row[:-1], rows)[g.row[step]] if rows > 1 else None
    route = route_lengths(layer, c, a, b, gc, far)
    trans[g.row[step], g.col[step], rank[a], rank[b]] = -np.abs(route - gc) / BETA_M
    back, scores = _forward(emis, trans)
    for trace, parts in zip(g.trace.tolist(), _backtrack(c, g, scores, back), strict=True):
        out[trace] = parts
    return out


def _viterbi_compiled(
    c: Candidates, pts: FloatArray, trace_of: IntArray, n_traces: int, rows: BoundedRows, layer: Layer
) -> list[list[list[Step]]]:
    """:func:`viterbi` on a metro-scale layer: the same model, run by one compiled kernel
    (:func:`geo.bounded.viterbi`). Why: profiled on unseen traces of the 249k-edge grid, the numpy
    pass was 53 % of matching, mostly fixed costs per column and per pair (a numpy call per column
    of the forward pass, pair arrays, sorting pairs by source) rather than arithmetic; the kernel
    also skips the route search of a candidate whose next candidates are all further along its own
    edge. The groups it walks are laid out by :func:`geo.compiled.groups` (about fifteen numpy calls
    per trace before), else by :func:`_groups_numpy`."""
    tiers = np.asarray(LIMIT_TIERS)
    if rows.kernels is not None:
        groups = rows.kernels.groups(c.point, trace_of, pts, tiers, DEFAULT_LIMIT_M / 3, DEFAULT_LIMIT_M)
    else:
        groups = _groups_numpy(c, pts, trace_of, tiers)
    emis = -0.5 * (c.dist / SIGMA_M) ** 2
    chosen, fresh = rows.viterbi(
        (layer.u, layer.v, layer.length), (c.state, c.offset, emis), groups, BETA_M, REVERSE_TOLERANCE_M
    )
    return _parts(c, chosen, fresh, trace_of, n_traces)


def _groups_numpy(
    c: Candidates, pts: FloatArray, trace_of: IntArray, tiers: FloatArray
) -> tuple[IntArray, IntArray, BoolArray, FloatArray, FloatArray]:
    """Groups (points with candidates) of a batch: first candidate, count, starts a trace, straight
    distance from the previous group (0 at a trace's start) and search limit (as :func:`_far`)."""
    starts, counts = _groups(c.point)
    gpts = c.point[starts]
    gtrace = trace_of[gpts]
    new = np.ones(len(starts), dtype=bool)
    new[1:] = gtrace[1:] != gtrace[:-1]
    gc = np.zeros(len(starts))
    gc[1:] = np.hypot(np.diff(pts[gpts, 0]), np.diff(pts[gpts, 1]))
    gc[new] = 0.0
    row = np.cumsum(new) - 1
    longest = np.zeros(int(row[-1]) + 1)
    np.maximum.at(longest, row, gc)
    far = tiers[np.minimum(np.searchsorted(tiers, 2.0 * longest + 300.0, side="left"), len(tiers) - 1)]
    limit = np.where(gc <= DEFAULT_LIMIT_M / 3, DEFAULT_LIMIT_M, far[row])
    return starts, counts, new, gc, limit


def _viterbi_table(
    c: Candidates,
    pts: FloatArray,
    trace_of: IntArray,
    n_traces: int,
    kernels: ModuleType,
    table: npt.NDArray[np.float32],
    layer: Layer,
) -> list[list[list[Step]]]:
    """:func:`viterbi` on a small network's layer, by one compiled kernel over its distance table
    (:func:`geo.compiled.viterbi_table`: same model, same ties). Why: the numpy pass cost ≈ 12 µs per
    point of a 42-point Lille trace, mostly numpy call overhead per column; see :mod:`geo.compiled`."""
    model = (SIGMA_M, BETA_M, REVERSE_TOLERANCE_M, DEFAULT_LIMIT_M / 3, DEFAULT_LIMIT_M)
    chosen, fresh = kernels.viterbi_table(
        table,
        (layer.u, layer.v, layer.length),
        (c.point, c.state, c.offset, c.dist),
        trace_of,
        pts,
        model,
        np.asarray(LIMIT_TIERS),
    )
    return _parts(c, chosen, fresh, trace_of, n_traces)


def _parts(
    c: Candidates, chosen: IntArray, fresh: BoolArray, trace_of: IntArray, n_traces: int
) -> list[list[list[Step]]]:
    """Steps of the chosen candidates (one per group), cut into parts where ``fresh``, per trace."""
    point = c.point[chosen]
    columns = (point.tolist(), c.state[chosen].tolist(), c.offset[chosen].tolist(), c.dist[chosen].tolist())
    steps = list(map(Step, *columns))
    out: list[list[list[Step]]] = [[] for _ in range(n_traces)]
    bounds = [*np.flatnonzero(fresh).tolist(), len(steps)]
    if n_traces == 1:
        out[0] = [steps[lo:hi] for lo, hi in itertools.pairwise(bounds)]
        return out
    traces = trace_of[point].tolist()
    for lo, hi in itertools.pairwise(bounds):
        out[traces[lo]].append(steps[lo:hi])
    return out


def _forward(emis: FloatArray, trans: FloatArray) -> tuple[IntArray, FloatArray]:
    """Viterbi forward pass over padded (B, n, K) emissions and (B, n-1, K, K) transitions.

    ``back[b, j] == -1`` (all of the row) marks column ``j`` of trace ``b`` as a new part's start:
    where no state of column ``j`` can be reached, the trace starts afresh from its emissions.
    The loop body is kept to a few array operations (a trace is mostly unbroken): breaks are found
    after a pass, fixed, and the pass resumed from the first one."""
    rows, n, width = emis.shape
    step = trans + emis[:, 1:, None, :]
    back = np.full((rows, n, width), -1, dtype=np.int64)
    scores = np.empty((rows, n, width))
    scores[:, 0] = emis[:, 0]
    start = 0
    t = np.empty((rows, width, width))
    while start < n - 1:
        for j in range(start, n - 1):
            np.add(step[:, j], scores[:, j, :, None], out=t)
            t.argmax(axis=1, out=back[:, j + 1])
            t.max(axis=1, out=scores[:, j + 1])
        dead = scores[:, start + 1 :].max(axis=2) == -np.inf
        if not dead.any():
            break
        col = int(np.argmax(dead.any(axis=0)))
        broken = dead[:, col]
        start += col + 1
        scores[broken, start] = emis[broken, start]
        back[broken, start] = -1
    return back, scores


def _backtrack(c: Candidates, g: _Batch, scores: FloatArray, back: IntArray) -> list[list[list[Step]]]:
    """The chosen candidates of every row, in parts, walking all rows back in lock-step.

    A shorter row's padded columns carry its last column's scores and point back to the same
    state, so every row can start from the last column; a part starts where ``back`` is -1."""
    rows, n, _ = scores.shape
    ar = np.arange(rows)
    best = scores.argmax(axis=2)  # best state of every column: where a part ends
    if rows == 1:  # one trace: a walk over Python ints beats a few numpy calls per column
        chosen = np.asarray([_walk_back(back[0].tolist(), best[0].tolist())], dtype=np.int64)
    else:
        chosen = np.empty((rows, n), dtype=np.int64)
        cur = best[:, n - 1]
        chosen[:, n - 1] = cur
        for j in range(n - 1, 0, -1):
            prev = back[ar, j, cur]
            cur = np.where(prev < 0, best[:, j - 1], prev)
            chosen[:, j - 1] = cur
    real = np.arange(n)[None, :] < g.size[:, None]
    row = np.broadcast_to(ar[:, None], (rows, n))[real]
    col = np.broadcast_to(np.arange(n)[None, :], (rows, n))[real]
    rank = chosen[real]
    starts = (back[row, col, rank] < 0).tolist()
    idx = g.starts[g.first[row] + col] + rank
    steps = list(map(Step, c.point[idx].tolist(), c.state[idx].tolist(), c.offset[idx].tolist(), c.dist[idx].tolist()))
    out: list[list[list[Step]]] = []
    lo = 0
    for size in g.size.tolist():
        hi = lo + size
        bounds = [k for k in range(lo, hi) if starts[k]] + [hi]
        out.append([steps[a:b] for a, b in itertools.pairwise(bounds)])
        lo = hi
    return out


def _walk_back(back: list[list[int]], best: list[int]) -> list[int]:
    """One row of :func:`_backtrack`: from the last column's best state back along ``back``."""
    n = len(best)
    chosen = [0] * n
    cur = chosen[n - 1] = best[n - 1]
    for j in range(n - 1, 0, -1):
        prev = back[j][cur]
        cur = chosen[j - 1] = best[j - 1] if prev < 0 else prev
    return chosen


def part_states(layer: Layer, part: list[Step]) -> list[int]:
    """States travelled by one matched part, in order (consecutive duplicates and U-turns removed)."""
    states = [part[0].state]
    v, u = layer.lists.v, layer.lists.u
    for prev, nxt in itertools.pairwise(part):
        if prev.state == nxt.state and nxt.offset >= prev.offset - REVERSE_TOLERANCE_M:
            continue
        a, b = v[prev.state], u[nxt.state]
        if a != b:
            states.extend(layer.state_path(a, b, MAX_ROUTE_M))
        states.append(nxt.state)
    return _without_u_turns(layer, [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]])


def _without_u_turns(layer: Layer, states: list[int]) -> list[int]:
    """Drop inner out-and-back pairs (A→B then B→A): a noisy point near a junction can make the
    HMM pop into a side street and back, which would give a self-overlapping geometry. The first
    and last states hold the part's end points and are always kept."""
    if len(states) < 4:
        return states
    u, v = layer.lists.u, layer.lists.v
    kept = [states[0]]
    for s in states[1:-1]:
        top = kept[-1]
        if len(kept) > 1 and u[s] == v[top] and v[s] == u[top]:
            kept.pop()
        elif s != top:
            kept.append(s)
    if states[-1] != kept[-1]:
        kept.append(states[-1])
    return kept


def part_cover(layer: Layer, part: list[Step], states: list[int]) -> list[float]:
    """Metres of each state of a part that the matched points span."""
    length = layer.lists.length
    first, last = part[0], part[-1]
    if len(states) == 1:
        return [max(last.offset - first.offset, 0.0)]
    return [length[states[0]] - first.offset, *(length[s] for s in states[1:-1]), last.offset]


def state_xy(net: RoadNetwork, layer: Layer, state: int) -> FloatArray:
    """Metric coordinates of a state in its travel order."""
    xy = net.edge_xy(int(layer.edge[state]))
    return xy[::-1] if layer.reverse[state] else xy


def cut(xy: FloatArray, t0: float, t1: float, cum: FloatArray | None = None) -> FloatArray:
    """The piece of polyline ``xy`` between distances ``t0 ≤ t1`` from its start (``cum``: its
    :func:`cumlen`, when already known)."""
    cum = cumlen(xy) if cum is None else cum
    total = float(cum[-1])
    t0, t1 = min(max(t0, 0.0), total), min(max(t1, 0.0), total)
    at = [t0, t1]
    x, y = np.interp(at, cum, xy[:, 0]).tolist(), np.interp(at, cum, xy[:, 1]).tolist()
    inner = xy[(cum > t0) & (cum < t1)]
    return np.concatenate([[(x[0], y[0])], inner, [(x[1], y[1])]])


def snapped_xy(net: RoadNetwork, layer: Layer, steps: list[Step]) -> FloatArray:
    """Where each matched point was placed on the road (metres)."""
    if not steps:
        return np.zeros((0, 2))
    edges = layer.edge[[s.state for s in steps]]
    offsets = np.asarray([s.offset for s in steps])
    along = np.where(layer.reverse[[s.state for s in steps]], net.length[edges] - offsets, offsets)
    return shapely.get_coordinates(shapely.line_interpolate_point(net.geoms[edges], along))


def match_steps(net: RoadNetwork, layer: Layer, xy: FloatArray, radius: float, k: int) -> list[list[Step]]:
    """The matched parts of a trace (the HMM without result assembly)."""
    return match_batch(net, layer, [xy], radius, k)[0]


BATCH = 64


def match_batch(
    net: RoadNetwork, layer: Layer, traces: list[FloatArray], radius: float, k: int
) -> list[list[list[Step]]]:
    """The matched parts of each trace; traces of similar length are matched together."""
    out: list[list[list[Step]]] = [[] for _ in traces]
    order = sorted(range(len(traces)), key=lambda i: len(traces[i]))
    for lo in range(0, len(order), BATCH):
        chunk = order[lo : lo + BATCH]
        pts = np.vstack([traces[i] for i in chunk]) if chunk else np.zeros((0, 2))
        trace_of = np.repeat(np.arange(len(chunk)), [len(traces[i]) for i in chunk])
        found = viterbi(candidates(net, layer, pts, radius, k), pts, trace_of, len(chunk), layer)
        for i, parts in zip(chunk, found, strict=True):
            out[i] = parts
    return out
