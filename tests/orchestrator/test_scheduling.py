"""Release order: list scheduling of gangs in the sweep's order (orchestrator/scheduling.py)."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from ray.tune.search import Searcher

from orchestrator.scheduling import (
    Gang,
    ListSearcher,
    Running,
    cell_gang,
    choose,
    fits,
    free_by_node,
    place,
    reservation,
)
from trainers.ladder import Resources


def gpus(n: int) -> Gang:
    return Gang(({"CPU": 1.0, "GPU": 1.0},) * n)


def nodes(*free_gpus: float) -> list[dict[str, float]]:
    return [{"CPU": 8.0, "GPU": g} for g in free_gpus]


def test_strict_gang_needs_one_node_with_room() -> None:
    assert fits(gpus(8), nodes(0, 8))
    assert not fits(gpus(8), nodes(4, 4))  # 8 free GPUs, but on two nodes
    assert fits(gpus(4), nodes(1, 4))


def test_spread_gang_takes_bundles_from_several_nodes() -> None:
    train = cell_gang(Resources(workers=8, cpus_per_worker=1, gpus_per_worker=1, zero_stage=2))
    assert not train.strict_pack
    assert fits(train, nodes(4, 4))
    assert not fits(train, nodes(4, 3))


def test_place_takes_the_tightest_node() -> None:
    after = place(gpus(2), nodes(8, 3, 2))
    assert after == [{"CPU": 8.0, "GPU": 8.0}, {"CPU": 8.0, "GPU": 3.0}, {"CPU": 6.0, "GPU": 0.0}]
    assert place(gpus(3), nodes(2, 2)) is None


def test_single_process_cell_is_one_bundle() -> None:
    gang = cell_gang(Resources(workers=1, cpus_per_worker=4, gpus_per_worker=1))
    assert gang == Gang(({"CPU": 4.0, "GPU": 1.0},))
    assert cell_gang(Resources(cpus_per_worker=2)) == Gang(({"CPU": 2.0},))  # no GPU asked


def test_every_worker_bundle_is_built_by_the_resources(tmp_path: Path) -> None:
    from orchestrator.driver import job_gang, trial_resources
    from orchestrator.grid import expand
    from orchestrator.jobs import build_jobs
    from orchestrator.spec import validate
    from storage.layout import SweepLayout

    res = Resources(workers=4, gpus_per_worker=1, cpus_per_worker=4, zero_stage=2)
    assert res.worker_bundle() == {"CPU": 4.0, "GPU": 1.0}
    assert cell_gang(res).bundles == (res.worker_bundle(),) * 4
    spec = validate({"name": "b", "storage": str(tmp_path), "models": ["tiny-s"],
                     "intermediate_tasks": ["none"], "target_tasks": ["xnli"], "seeds": [0],
                     "resources": {"tiny-s": {"cpus_per_worker": 3}}})  # fmt: skip
    jobs = build_jobs(spec, SweepLayout.of(spec.storage, spec.name), expand(spec))
    (job,) = jobs.values()
    assert job.config.model.resources.worker_bundle() == {"CPU": 3.0}
    assert trial_resources(job, spec).bundles == [{"CPU": 3.0}]
    assert job_gang(job).bundles == ({"CPU": 3.0},)


def test_free_by_node_counts_placed_and_pending_groups() -> None:
    ray_nodes = [
        {"NodeID": "a", "Alive": True, "Resources": {"CPU": 8.0, "GPU": 8.0}},
        {"NodeID": "b", "Alive": True, "Resources": {"CPU": 8.0, "GPU": 8.0}},
        {"NodeID": "dead", "Alive": False, "Resources": {"CPU": 8.0, "GPU": 8.0}},
    ]
    bundle = {"CPU": 1.0, "GPU": 1.0}
    groups = {
        "placed": {"state": "CREATED", "strategy": "PACK", "bundles": {0: bundle, 1: bundle},
                   "bundles_to_node_id": {0: "a", 1: "b"}},
        "asked": {"state": "PENDING", "strategy": "STRICT_PACK",
                  "bundles": {i: bundle for i in range(6)}, "bundles_to_node_id": {}},
        "gone": {"state": "REMOVED", "strategy": "PACK", "bundles": {0: bundle},
                 "bundles_to_node_id": {0: "a"}},
    }  # fmt: skip
    # 7 + 7 free once placed; the pending 6-GPU gang would take one node down to 1.
    assert sorted(f["GPU"] for f in free_by_node(ray_nodes, groups).values()) == [1.0, 7.0]


def test_reservation_without_estimates_holds_the_roomiest_node() -> None:
    wait, around = reservation(gpus(8), nodes(2, 6, 5))
    assert wait == 0.0 and [n["GPU"] for n in around] == [2, 0, 5]
    spread = cell_gang(Resources(workers=8, cpus_per_worker=1, gpus_per_worker=1, zero_stage=2))
    assert [n["GPU"] for n in reservation(spread, nodes(2, 6, 5))[1]] == [2, 0, 0]
    assert choose(["x", "y"], {"x": gpus(8), "y": gpus(2)}, nodes(2, 6)) == "y"
    assert choose(["x", "y"], {"x": gpus(8), "y": gpus(3)}, nodes(2, 6)) is None


def test_reservation_takes_the_node_that_frees_soonest() -> None:
    # Node 0 has 4 free and a 4-GPU cell ending in 50 s; node 1 has 6 free and two
    # one-GPU cells ending in 10 s and 90 s: the 8-GPU gang can start on node 0 at 50 s.
    running = [Running(0, {"GPU": 4.0, "CPU": 4.0}, 50.0),
               Running(1, {"GPU": 1.0, "CPU": 1.0}, 10.0),
               Running(1, {"GPU": 1.0, "CPU": 1.0}, 90.0)]  # fmt: skip
    wait, around = reservation(gpus(8), nodes(4, 6), running)
    assert wait == 50.0 and [n["GPU"] for n in around] == [0, 6]


def test_easy_backfill_lets_a_short_cell_use_the_reserved_room() -> None:
    running = [Running(0, {"GPU": 4.0, "CPU": 4.0}, 50.0)]
    gangs = {"xxl": gpus(8), "long": gpus(4), "short": gpus(4)}
    durations = {"xxl": 100.0, "long": 80.0, "short": 40.0}
    # Only node 0 has room (4 GPUs) and the XXL gang waits for it until 50 s: the
    # 80-s cell would delay it, the 40-s one ends in time.
    pick = choose(["xxl", "long", "short"], gangs, nodes(4, 0), running, durations)
    assert pick == "short"


def probe(*free_gpus: float, groups: dict | None = None) -> Callable[[], tuple[list, dict]]:
    """A cluster as `ray.nodes()` and `placement_group_table()` would show it."""
    ray_nodes = [{"NodeID": f"n{i}", "Alive": True, "Resources": {"CPU": 8.0, "GPU": g}}
                 for i, g in enumerate(free_gpus)]  # fmt: skip
    return lambda: (ray_nodes, groups if groups is not None else {})


def release_all(searcher: ListSearcher, trial: int = 0) -> list[str]:
    out = []
    while (config := searcher.suggest(f"t{trial}")) is not None:
        if config == Searcher.FINISHED:
            break
        out.append(config["trial_key"])
        trial += 1
    return out


def test_releases_in_order_and_backfills_what_fits() -> None:
    order = ["xxl", "xl", "base1", "base2", "base3"]
    gangs = {"xxl": gpus(8), "xl": gpus(4), "base1": gpus(1), "base2": gpus(1), "base3": gpus(1)}
    searcher = ListSearcher(order, gangs, probe=probe(8, 2, 3))
    # XXL takes the 8-GPU node; XL then fits nowhere and waits for the 3-GPU node (the
    # closest to fitting it), so the cells after it are backfilled on the 2-GPU one only.
    # Ray has not placed anything yet: the released gangs count as taken meanwhile.
    assert release_all(searcher) == ["xxl", "base1", "base2"]
    assert searcher.remaining == ["xl", "base3"]


def test_a_released_gang_is_counted_once_its_placement_group_shows_up() -> None:
    bundle = {"CPU": 1.0, "GPU": 1.0}
    groups: dict = {}
    now = [0.0]
    searcher = ListSearcher(["a", "b"], {"a": gpus(8), "b": gpus(8)}, {"a": 100.0, "b": 90.0},
                            probe=probe(8, 8, groups=groups), clock=lambda: now[0])  # fmt: skip
    assert searcher.suggest("t0") == {"trial_key": "a"}
    assert [n["GPU"] for n in searcher.free()] == [0.0, 8.0]  # in flight
    groups["pg-a"] = {
        "state": "CREATED", "strategy": "STRICT_PACK", "bundles": dict(enumerate([bundle] * 8)),
        "bundles_to_node_id": dict.fromkeys(range(8), "n1"),
    }  # fmt: skip
    now[0] = 30.0
    view, running = searcher.observe()
    assert [n["GPU"] for n in view] == [8.0, 0.0]  # placed on n1; not counted twice
    assert running == [Running(1, {"CPU": 8.0, "GPU": 8.0}, 70.0)]
    assert searcher.inflight == {}
    groups["pg-a"]["state"] = "REMOVED"
    assert searcher.observe()[1] == [] and searcher.placed == {}


def created(node: str, n: int) -> dict:
    bundles = dict(enumerate([{"CPU": 1.0, "GPU": 1.0}] * n))
    return {"state": "CREATED", "strategy": "STRICT_PACK", "bundles": bundles,
            "bundles_to_node_id": dict.fromkeys(range(n), node)}  # fmt: skip


def test_a_finished_trials_group_is_taken_over_by_the_next_cell_of_its_shape() -> None:
    groups: dict = {}
    searcher = ListSearcher(["a", "b", "c"], {k: gpus(1) for k in "abc"},
                            probe=probe(1, 1, groups=groups), clock=lambda: 0.0)  # fmt: skip
    assert searcher.suggest("t0") == {"trial_key": "a"}
    groups["pg-a"] = created("n0", 1)
    assert searcher.suggest("t1") == {"trial_key": "b"}
    groups["pg-b"] = created("n1", 1)
    assert searcher.suggest("t2") is None  # full
    searcher.on_trial_complete("t0")  # Tune keeps t0's actor, and its group, for what comes
    assert [n["GPU"] for n in searcher.free()] == [1.0, 0.0]
    assert searcher.suggest("t2") == {"trial_key": "c"}  # takes pg-a over: nothing in flight
    assert searcher.placed["pg-a"] == ("t2", "c", 0.0) and searcher.inflight == {}
    assert [n["GPU"] for n in searcher.free()] == [0.0, 0.0]


def test_another_shape_counts_a_finished_trials_group_as_free_until_it_goes() -> None:
    groups: dict = {}
    searcher = ListSearcher(["a", "b"], {"a": gpus(1), "b": gpus(2)},
                            probe=probe(2, groups=groups), clock=lambda: 0.0)  # fmt: skip
    assert searcher.suggest("t0") == {"trial_key": "a"}
    groups["pg-a"] = created("n0", 1)
    assert searcher.suggest("t1") is None
    searcher.on_trial_complete("t0")
    assert searcher.suggest("t1") == {"trial_key": "b"}  # Tune then gives the cached actor up
    assert searcher.reusable == {"pg-a": "a"} and set(searcher.inflight) == {"t1"}
    assert [n["GPU"] for n in searcher.free()] == [0.0]  # pg-a's room went to b
    groups["pg-a"]["state"] = "REMOVED"
    assert [n["GPU"] for n in searcher.free()] == [0.0] and searcher.reusable == {}


def test_a_trial_whose_group_goes_away_has_moved() -> None:
    groups: dict = {}
    searcher = ListSearcher(["a", "b", "c"], {k: gpus(1) for k in "abc"}, {"c": 5.0},
                            probe=probe(1, 1, 1, groups=groups), clock=lambda: 0.0)  # fmt: skip
    for trial, key, node in (("t0", "a", "n0"), ("t1", "b", "n1"), ("t2", "c", "n2")):
        assert searcher.suggest(trial) == {"trial_key": key}
        groups[f"pg-{key}"] = created(node, 1)
        searcher.observe()
    searcher.on_trial_complete("t0")
    # Tune gives t0's cached actor to c, which was waiting for its own, and removes pg-c.
    groups["pg-c"]["state"] = "REMOVED"
    view, running = searcher.observe()
    assert [n["GPU"] for n in view] == [0.0, 0.0, 1.0]
    assert searcher.placed["pg-a"] == ("t2", "c", 0.0)
    assert Running(0, {"CPU": 1.0, "GPU": 1.0}, 5.0) in running
    # Its group goes again (a retry, a distributed cell's next Ray Train run): it waits for
    # a new one, its room still counted, and that group is its when it comes.
    groups["pg-a"]["state"] = "REMOVED"
    assert [n["GPU"] for n in searcher.free()] == [0.0, 0.0, 1.0]  # n0 or n2: one is c's
    assert set(searcher.inflight) == {"t2"}
    groups["pg-c2"] = created("n2", 1)
    assert [n["GPU"] for n in searcher.free()] == [1.0, 0.0, 0.0]
    assert searcher.placed["pg-c2"] == ("t2", "c", 0.0) and searcher.inflight == {}


def test_a_gang_ray_never_heard_of_stops_counting_after_a_while() -> None:
    now = [0.0]
    searcher = ListSearcher(["a", "b"], {"a": gpus(8), "b": gpus(8)}, probe=probe(8),
                            clock=lambda: now[0])  # fmt: skip
    assert searcher.suggest("t0") == {"trial_key": "a"}
    assert searcher.suggest("t1") is None
    now[0] = ListSearcher.INFLIGHT_S + 1
    assert searcher.suggest("t1") == {"trial_key": "b"}


def test_a_gang_that_can_never_fit_is_released_once_nothing_runs() -> None:
    searcher = ListSearcher(["huge"], {"huge": gpus(16)}, probe=probe(8, 8))
    assert searcher.suggest("t0") == {"trial_key": "huge"}  # Ray Train/Tune then say why
    searcher = ListSearcher(["a", "huge"], {"a": gpus(8), "huge": gpus(16)}, probe=probe(0, 8))
    assert searcher.suggest("t0") == {"trial_key": "a"}
    assert searcher.suggest("t1") is None  # "a" still runs: wait
    searcher.on_trial_complete("t0")
    assert searcher.suggest("t2") == {"trial_key": "huge"}
    assert searcher.suggest("t3") == Searcher.FINISHED


def test_state_survives_save_and_restore(tmp_path: Path) -> None:
    searcher = ListSearcher(["a", "b", "c"], {k: gpus(1) for k in "abc"}, probe=probe(1))
    assert searcher.suggest("t0") == {"trial_key": "a"}
    searcher.save(str(tmp_path / "state.pkl"))
    restored = ListSearcher([], {}, probe=probe(1))
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.remaining == ["b", "c"]
    assert release_all(restored) == ["b"]


@pytest.mark.integration
def test_tune_starts_cells_as_list_scheduling_orders_them(tmp_path: Path) -> None:
    """On a real Ray cluster with logical GPUs: order, gangs and backfill are what we say.

    One node with 2 GPUs; order a (2 GPUs), b (1), c (1), d (2): a alone first, then b and
    c together, and d only once both are done. Tune's own order would hand d's room to
    whichever placement group the GCS placed first.
    """
    import ray
    from ray import tune
    from ray.cluster_utils import Cluster

    from orchestrator.scheduling import tuner_settings

    def sleeper(config: dict, seconds: dict, log: str) -> None:  # pickled by value
        start = time.time()
        time.sleep(seconds[config["trial_key"]])
        line = {"key": config["trial_key"], "start": start, "end": time.time()}
        with open(log, "a") as f:
            f.write(json.dumps(line) + "\n")

    temp = tempfile.mkdtemp(prefix="xs-", dir="/tmp")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "temp_dir": temp})
    cluster.add_node(num_cpus=2, num_gpus=2)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        seconds = {"a": 2.0, "b": 1.5, "c": 1.5, "d": 0.5}
        size = {"a": 2, "b": 1, "c": 1, "d": 2}
        log = str(tmp_path / "starts.jsonl")
        trainable = tune.with_resources(
            tune.with_parameters(sleeper, seconds=seconds, log=log),
            lambda config: tune.PlacementGroupFactory(
                [{"CPU": 1, "GPU": 1}] * size[config["trial_key"]], strategy="STRICT_PACK"
            ),
        )
        order = ["a", "b", "c", "d"]
        gangs = {k: gpus(size[k]) for k in order}
        config, space = tuner_settings(order, gangs, max_concurrent=2)
        tuner = tune.Tuner(
            trainable,
            param_space=space,
            tune_config=config,
            run_config=tune.RunConfig(storage_path=str(tmp_path / "tune"), verbose=0),
        )
        results = tuner.fit()
        assert not results.errors
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(temp, ignore_errors=True)
    runs = {r["key"]: r for r in map(json.loads, Path(log).read_text().splitlines())}
    assert sorted(runs) == order
    assert runs["a"]["end"] <= min(runs["b"]["start"], runs["c"]["start"])
    assert runs["b"]["start"] < runs["c"]["end"] and runs["c"]["start"] < runs["b"]["end"]
    assert max(runs["b"]["end"], runs["c"]["end"]) <= runs["d"]["start"]
