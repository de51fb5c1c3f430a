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
(list scheduling with backfill and one reservation), else nothing.

What is free is read from Ray, not guessed: each alive node's resources minus the bundles
of every placement group on it (`ray.util.placement_group_table`), which also counts the
gangs Ray Train asks for inside a distributed cell's trial. A group still pending, such
as the one of the cell released a moment ago, is counted where it would fit best.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ray.tune.search import Searcher

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


def choose(
    remaining: Sequence[str], gangs: Mapping[str, Gang], free: Sequence[Resources]
) -> str | None:
    """The cell to release now: the first in order if it fits, else a backfill or nothing.

    While the first cell waits for room, the node(s) it waits for are held back for it:
    later cells are backfilled only around them. Without that hold a long stream of
    one-GPU cells keeps every node partly busy and an eight-GPU gang first in line never
    starts until the end of the sweep, which is the tail longest-first ordering avoids.
    """
    if not remaining:
        return None
    head = gangs[remaining[0]]
    if fits(head, free):
        return remaining[0]
    around = held_back(head, free)
    return next((k for k in remaining[1:] if fits(gangs[k], around)), None)


def held_back(gang: Gang, free: Sequence[Resources]) -> list[dict[str, float]]:
    """`free` without the nodes `gang` waits for: those with the most room, enough of them."""
    view = [{k: float(node.get(k, 0.0)) for k in COUNTED} for node in free]
    need = _total(gang.bundles)["GPU"]
    held = 0.0
    for node in sorted(view, key=lambda n: (-n["GPU"], -n["CPU"])):
        if gang.strict_pack and held > 0:
            break
        if not gang.strict_pack and held >= need:
            break
        held += node["GPU"]
        node.update({k: 0.0 for k in COUNTED})
    return view


def _total(bundles: Sequence[Resources]) -> dict[str, float]:
    return {k: sum(float(b.get(k, 0.0)) for b in bundles) for k in COUNTED}


def free_per_node(
    nodes: Sequence[Mapping[str, Any]], groups: Mapping[str, Any]
) -> list[dict[str, float]]:
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
    return view


def cell_gang(
    workers: int, cpus_per_worker: float, gpus_per_worker: float, distributed: bool
) -> Gang:
    """A cell's whole demand: its one trial bundle, or its Ray Train workers' bundles.

    Ray Train places a worker group with the PACK strategy (nodes may share it), a
    single-process cell's trial is one bundle, so on one node by construction.
    """
    bundle = {"CPU": float(cpus_per_worker), "GPU": float(gpus_per_worker)}
    if distributed:
        return Gang((bundle,) * workers, strict_pack=False)
    return Gang((bundle,))


def tuner_settings(
    order: Sequence[str], gangs: Mapping[str, Gang], max_concurrent: int
) -> tuple[Any, dict[str, Any]]:
    """The `TuneConfig` and param space a sweep runs with.

    Cells that all hold the same gang need no choosing (any free room fits the next one),
    so Tune's grid keeps the order and a finished trial's actor takes the next cell
    (about 0.15 s instead of about 1.5 s to start a fresh one on these machines). With
    gangs of several sizes `ListSearcher` releases them, and actors are not reused: a
    cached actor keeps its placement group, so the room it holds would look taken.
    """
    from ray import tune

    first = next(iter(gangs.values()), None)
    if all(g == first for g in gangs.values()):
        config = tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True)
        return config, {"trial_key": tune.grid_search(list(order))}
    config = tune.TuneConfig(
        search_alg=ListSearcher(order, gangs),
        num_samples=len(order),
        max_concurrent_trials=max_concurrent,
        reuse_actors=False,
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
    bundles for a distributed cell). Tune may ask several times before it asks Ray for
    the placement groups of what was released, so a released gang counts as taken (where
    it fits best) until a new placement group of its shape shows up, or for
    `INFLIGHT_S` at most. A cell whose gang can never fit the cluster is released when
    nothing else is running, so that it fails loudly instead of waiting.
    """

    INFLIGHT_S = 60.0

    def __init__(
        self,
        order: Sequence[str],
        gangs: Mapping[str, Gang],
        probe: Callable[[], tuple[Any, Any]] = cluster_state,
        config_key: str = "trial_key",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.remaining = list(order)
        self.gangs = dict(gangs)
        self.probe = probe
        self.config_key = config_key
        self.clock = clock
        self.running: set[str] = set()
        self.inflight: dict[str, tuple[Gang, float]] = {}  # trial id -> (gang, released)
        self.seen: set[str] = set()  # placement groups already matched or counted

    def free(self) -> list[dict[str, float]]:
        """What is free now, with the released gangs Ray has not heard of yet taken out."""
        nodes, groups = self.probe()
        for group_id, group in groups.items():
            if group_id in self.seen:
                continue
            self.seen.add(group_id)
            got = shape(group.get("bundles", {}).values())
            same = [t for t, (gang, _) in self.inflight.items() if shape(gang.bundles) == got]
            if same:
                del self.inflight[same[0]]
        now = self.clock()
        self.inflight = {t: v for t, v in self.inflight.items() if now - v[1] < self.INFLIGHT_S}
        view = free_per_node(nodes, groups)
        for gang, _ in self.inflight.values():
            view = place(gang, view) or view
        return view

    def suggest(self, trial_id: str) -> dict | None:
        if not self.remaining:
            return cast(dict, Searcher.FINISHED)  # Tune's sentinel: no more trials
        pick = choose(self.remaining, self.gangs, self.free())
        if pick is None and not self.running:
            pick = self.remaining[0]  # nothing runs, so it never will fit: let Ray say why
        if pick is None:
            return None
        self.remaining.remove(pick)
        self.running.add(trial_id)
        self.inflight[trial_id] = (self.gangs[pick], self.clock())
        return {self.config_key: pick}

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self.running.discard(trial_id)
        self.inflight.pop(trial_id, None)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump({"remaining": self.remaining, "gangs": self.gangs,
                         "config_key": self.config_key}, f)  # fmt: skip

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            state = pickle.load(f)
        self.remaining = state["remaining"]
        self.gangs = state["gangs"]
        self.config_key = state["config_key"]
        self.running, self.inflight, self.seen = set(), {}, set()
