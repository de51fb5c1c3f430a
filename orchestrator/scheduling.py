"""Which cell starts next: list scheduling in the sweep's order, a gang only when it fits.

Ray Tune, left to itself, asks the cluster for every pending trial's placement group at
once, and the GCS then places whichever fits first; with gangs of different sizes (one GPU
for XLM-R base, eight for XXL) that starves the big gangs behind a stream of small ones
and scatters the longest-first order `plan.longest_first` computed. With actor reuse it
does the opposite: a finished trial's actor takes the next trial of the same shape, so a
whole shape runs before any other starts.

`ListSearcher` makes the order hold. Tune asks it for a trial on every step of its loop
(while fewer than `max_concurrent_trials` are live), and no trial exists before it is
released. It releases the first cell in the sweep's order if its gang fits into what is
free now, else a later cell that fits without touching the room the first one waits for
or is estimated to end before that room frees (EASY backfilling), else nothing.

What is free is read from Ray, not guessed: each alive node's resources minus the bundles
of every placement group on it (`ray.util.placement_group_table`), which also counts the
gangs Ray Train asks for inside a distributed cell's trial. A group still pending, such
as the one of the cell released a moment ago, is counted where it would fit best.

Actors are reused here too. A finished trial's actor keeps its placement group while Tune
holds it for a trial of the same shape (or, with nothing waiting, for whatever comes
next), so the searcher counts that group's room as free: the next cell of that shape
released takes it over (about 0.15 s instead of about 1.5 s for a fresh actor on these
machines), and a cell of another shape makes Tune give the actor and its group up.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ray.tune.search import Searcher

from trainers.ladder import Resources as CellResources

Resources = Mapping[str, float]

# What a gang's fit is judged on; other resources (memory, custom tokens) are scheduling
# details Ray enforces itself.
COUNTED = ("CPU", "GPU")


@dataclass(frozen=True)
class Gang:
    """The resources a cell holds while it runs: bundles, all on one node or anywhere."""

    bundles: tuple[Mapping[str, float], ...]
    strict_pack: bool = True


def place(gang: Gang, free: Sequence[Resources]) -> list[dict[str, float]] | None:
    """`free` (one mapping per node) with `gang` taken out where it fits most tightly.

    None when it does not fit now. Bundles of a non-strict gang go one by one, the
    largest first, each to the node it leaves the fewest GPUs on.
    """
    view = [{k: float(node.get(k, 0.0)) for k in COUNTED} for node in free]
    parts = [_total(gang.bundles)] if gang.strict_pack else list(gang.bundles)
    for part in sorted(parts, key=lambda b: -float(b.get("GPU", 0.0))):
        need = {k: float(part.get(k, 0.0)) for k in COUNTED}
        rooms = [n for n in view if all(n[k] >= need[k] for k in COUNTED)]
        if not rooms:
            return None
        home = min(rooms, key=lambda n: (n["GPU"] - need["GPU"], n["CPU"] - need["CPU"]))
        for k in COUNTED:
            home[k] -= need[k]
    return view


def fits(gang: Gang, free: Sequence[Resources]) -> bool:
    """Whether `gang` can be placed into `free` (one mapping per node) right now."""
    return place(gang, free) is not None


@dataclass(frozen=True)
class Running:
    """A released cell as the reservation sees it: where it is, what it holds, how long."""

    node: int  # index into the free view
    holds: Mapping[str, float]
    ends_in: float  # estimated seconds from now; inf when unknown


def choose(
    remaining: Sequence[str],
    gangs: Mapping[str, Gang],
    free: Sequence[Resources],
    running: Sequence[Running] = (),
    durations: Mapping[str, float] | None = None,
) -> str | None:
    """The cell to release now: the first in order if it fits, else a backfill or nothing.

    While the first cell waits for room, the node it waits for is reserved for it (EASY
    backfilling): a later cell is released only if it fits without that node, or if it is
    estimated to end before the first one could start there. Without the reservation a
    stream of one-GPU cells keeps every node partly busy and an eight-GPU gang first in
    line starts only at the end of the sweep, the tail longest-first ordering avoids.
    """
    if not remaining:
        return None
    head = gangs[remaining[0]]
    if fits(head, free):
        return remaining[0]
    wait, around = reservation(head, free, running)
    estimate = durations or {}
    for key in remaining[1:]:
        if fits(gangs[key], around):
            return key
        if estimate.get(key, math.inf) <= wait and fits(gangs[key], free):
            return key
    return None


def reservation(
    gang: Gang, free: Sequence[Resources], running: Sequence[Running] = ()
) -> tuple[float, list[dict[str, float]]]:
    """When `gang` could start (seconds from now) and `free` without the room it waits for.

    For a one-node gang, the node where the cells running on it free enough room soonest
    by their estimates (or, when no estimate says so, the node with the most room now).
    A gang that may span nodes holds back the nodes with the most room, enough of them.
    """
    view = [{k: float(node.get(k, 0.0)) for k in COUNTED} for node in free]
    need = _total(gang.bundles)
    if not gang.strict_pack:
        held = 0.0
        for node in sorted(view, key=lambda n: (-n["GPU"], -n["CPU"])):
            if held >= need["GPU"] and held > 0:
                break
            held += node["GPU"]
            node.update(dict.fromkeys(COUNTED, 0.0))
        return 0.0, view
    soonest: list[tuple[float, float, int]] = []
    for i, node in enumerate(view):
        room = dict(node)
        start = math.inf
        for r in sorted((r for r in running if r.node == i), key=lambda r: r.ends_in):
            for k in COUNTED:
                room[k] += float(r.holds.get(k, 0.0))
            if all(room[k] >= need[k] for k in COUNTED):
                start = max(0.0, r.ends_in)
                break
        soonest.append((start, -node["GPU"], i))
    start, _, node_index = min(soonest)
    view[node_index].update(dict.fromkeys(COUNTED, 0.0))
    return (0.0 if math.isinf(start) else start), view


def _total(bundles: Sequence[Resources]) -> dict[str, float]:
    return {k: sum(float(b.get(k, 0.0)) for b in bundles) for k in COUNTED}


def free_by_node(
    nodes: Sequence[Mapping[str, Any]], groups: Mapping[str, Any]
) -> dict[str, dict[str, float]]:
    """Free CPU/GPU per alive node, from `ray.nodes()` and `ray.util.placement_group_table()`.

    A placement group holds its bundles' resources from the moment it is placed until it
    is removed, whether or not anything runs in it. One still pending (just asked for, or
    waiting for room) is counted where it would fit best, so that a gang released a moment
    ago is not released into the same room twice.
    """
    free = {
        n["NodeID"]: {k: float(n.get("Resources", {}).get(k, 0.0)) for k in COUNTED}
        for n in nodes
        if n.get("Alive")
    }
    pending = []
    for group in groups.values():
        if group.get("state") == "PENDING":
            pending.append(Gang(tuple(group.get("bundles", {}).values()),
                                group.get("strategy") == "STRICT_PACK"))  # fmt: skip
        if group.get("state") != "CREATED":
            continue
        placed = group.get("bundles_to_node_id", {})
        for index, bundle in group.get("bundles", {}).items():
            node = free.get(placed.get(index, ""))
            if node is None:
                continue
            for k in COUNTED:
                node[k] -= float(bundle.get(k, 0.0))
    view = list(free.values())
    for gang in pending:
        view = place(gang, view) or view
    return dict(zip(free, view, strict=True))


def cell_gang(res: CellResources) -> Gang:
    """A cell's whole demand: its one trial bundle, or its Ray Train workers' bundles.

    Ray Train places a worker group with the PACK strategy (nodes may share it), a
    single-process cell's trial is one bundle, so on one node by construction.
    """
    bundle = res.worker_bundle()
    if res.distributed:
        return Gang((bundle,) * res.workers, strict_pack=False)
    return Gang((bundle,))


def tuner_settings(
    order: Sequence[str],
    gangs: Mapping[str, Gang],
    max_concurrent: int,
    durations: Mapping[str, float] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The `TuneConfig` and param space a sweep runs with.

    Cells that all hold the same gang need no choosing (any free room fits the next one),
    so Tune's grid keeps the order. With gangs of several sizes `ListSearcher` releases
    them. Either way a finished trial's actor takes the next cell of its shape (about
    0.15 s instead of about 1.5 s to start a fresh one on these machines).
    """
    from ray import tune

    first = next(iter(gangs.values()), None)
    if all(g == first for g in gangs.values()):
        config = tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True)
        return config, {"trial_key": tune.grid_search(list(order))}
    config = tune.TuneConfig(
        search_alg=ListSearcher(order, gangs, durations),
        num_samples=len(order),
        max_concurrent_trials=max_concurrent,
        reuse_actors=True,
    )
    return config, {}


def cluster_state() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The connected Ray cluster's nodes and placement groups, as Ray reports them."""
    import ray

    return ray.nodes(), ray.util.placement_group_table()


def shape(bundles: Iterable[Resources]) -> tuple[tuple[float, ...], ...]:
    """A gang's bundles as compared with a placement group's: counted resources only."""
    return tuple(sorted(tuple(float(b.get(k, 0.0)) for k in COUNTED) for b in bundles))


class ListSearcher(Searcher):
    """Releases `order`'s trial keys to Tune one at a time, as `choose` picks them.

    `gangs[key]` is the cell's whole demand (its trial's bundle, or its Train workers'
    bundles for a distributed cell); `durations[key]` its estimated wall time in seconds
    (the cost model's), which lets a short cell backfill the room a gang is waiting for.
    Tune may ask several times before it asks Ray for the placement groups of what was
    released, so a released gang counts as taken (where it fits best) until a new
    placement group of its shape shows up, or for `INFLIGHT_S` at most; that group then
    tells where the cell runs. A finished trial's group that is still there is free for
    the next cell of its shape (Tune hands that cell the cached actor, group and all,
    oldest first) and for any other (Tune then removes it). A group that goes away under
    a running trial means the trial moved: into a finished trial's group of its shape
    (Tune reused that actor for it), else into a group still to come (a Ray Train run of
    a distributed cell, a retry). A cell whose gang can never fit the cluster is released
    when nothing else is running, so that it fails loudly instead of waiting.
    """

    INFLIGHT_S = 60.0

    def __init__(
        self,
        order: Sequence[str],
        gangs: Mapping[str, Gang],
        durations: Mapping[str, float] | None = None,
        probe: Callable[[], tuple[Any, Any]] = cluster_state,
        config_key: str = "trial_key",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.remaining = list(order)
        self.gangs = dict(gangs)
        self.durations = dict(durations or {})
        self.probe = probe
        self.config_key = config_key
        self.clock = clock
        self.running: set[str] = set()
        self.inflight: dict[str, tuple[str, float]] = {}  # trial id -> (key, released at)
        self.placed: dict[str, tuple[str, str, float]] = {}  # group -> (trial, key, released)
        self.reusable: dict[str, str] = {}  # group of a finished trial -> its key, oldest first

    def observe(self) -> tuple[list[dict[str, float]], list[Running]]:
        """What is free now (released gangs Ray has not heard of taken out) and what runs."""
        nodes, groups = self.probe()
        now = self.clock()
        self.reusable = {g: k for g, k in self.reusable.items()
                         if groups.get(g, {}).get("state") == "CREATED"}  # fmt: skip
        for group_id, (trial, key, released) in list(self.placed.items()):
            if groups.get(group_id, {}).get("state") == "REMOVED":
                del self.placed[group_id]
                if trial in self.running:  # it moved
                    self.assign(trial, key, released, now)
        for group_id, group in groups.items():  # a new group is the released cell's of its shape
            if group_id in self.placed or group_id in self.reusable or not self.inflight:
                continue
            if group.get("state") not in ("PENDING", "CREATED"):
                continue
            got = shape(group.get("bundles", {}).values())
            same = [t for t, (k, _) in self.inflight.items() if self.shape(k) == got]
            if same:
                key, released = self.inflight.pop(same[0])
                self.placed[group_id] = (same[0], key, released)
        self.inflight = {t: v for t, v in self.inflight.items() if now - v[1] < self.INFLIGHT_S}
        by_node = free_by_node(nodes, groups)
        index = {node: i for i, node in enumerate(by_node)}
        view = list(by_node.values())
        for group_id in self.reusable:  # its room is free for whatever is released next
            group = groups[group_id]
            for b, bundle in group.get("bundles", {}).items():
                node = group.get("bundles_to_node_id", {}).get(b, "")
                for k in COUNTED if node in index else ():
                    view[index[node]][k] += float(bundle.get(k, 0.0))
        running = []
        for group_id, (_, key, released) in self.placed.items():
            group = groups.get(group_id, {})
            if group.get("state") != "CREATED":
                continue
            where = {index.get(n) for n in group.get("bundles_to_node_id", {}).values()}
            node = where.pop() if len(where) == 1 else None
            if node is not None:  # on one node: it gives that node its room back
                ends = released + self.durations.get(key, math.inf) - now
                holds = _total(list(group.get("bundles", {}).values()))
                running.append(Running(node, holds, ends))
        for key, _ in self.inflight.values():
            view = place(self.gangs[key], view) or view
        return view, running

    def shape(self, key: str) -> tuple[tuple[float, ...], ...]:
        return shape(self.gangs[key].bundles)

    def reuse(self, key: str) -> str | None:
        """The oldest finished trial's group `key`'s cell would take over, if any."""
        return next((g for g, k in self.reusable.items() if self.shape(k) == self.shape(key)),
                    None)  # fmt: skip

    def assign(self, trial: str, key: str, released: float, now: float) -> None:
        """Where a trial released (or whose group went away) runs: in the oldest cached
        actor's group of its shape, which Tune hands it, else in a group still to come."""
        group = self.reuse(key)
        if group is not None:
            del self.reusable[group]
            self.placed[group] = (trial, key, released)
        else:
            self.inflight[trial] = (key, now)

    def free(self) -> list[dict[str, float]]:
        return self.observe()[0]

    def suggest(self, trial_id: str) -> dict | None:
        if not self.remaining:
            return cast(dict, Searcher.FINISHED)  # Tune's sentinel: no more trials
        view, running = self.observe()
        pick = choose(self.remaining, self.gangs, view, running, self.durations)
        if pick is None and not self.running:
            pick = self.remaining[0]  # nothing runs, so it never will fit: let Ray say why
        if pick is None:
            return None
        self.remaining.remove(pick)
        self.running.add(trial_id)
        now = self.clock()
        self.assign(trial_id, pick, now, now)
        return {self.config_key: pick}

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self.running.discard(trial_id)
        self.inflight.pop(trial_id, None)
        for group_id, (trial, key, _) in list(self.placed.items()):
            if trial == trial_id:  # Tune may keep its actor, and the group, for the next cell
                del self.placed[group_id]
                self.reusable[group_id] = key

    def save(self, checkpoint_path: str) -> None:
        state = {"remaining": self.remaining, "gangs": self.gangs,
                 "durations": self.durations, "config_key": self.config_key}  # fmt: skip
        with open(checkpoint_path, "wb") as f:
            pickle.dump(state, f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.remaining = state["remaining"]
        self.gangs = state["gangs"]
        self.durations = state["durations"]
        self.config_key = state["config_key"]
        self.running, self.inflight, self.placed = set(), {}, {}
        self.reusable = {}
