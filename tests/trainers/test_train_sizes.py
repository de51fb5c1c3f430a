"""Training examples per task: `data.max_examples.tasks` caps and an arm's exact `n=N`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evaluation.tasks import get_task
from storage.errors import UserError
from trainers.celldata import DataAccess

SIQA = get_task("siqa")


@pytest.fixture(scope="module")
def access(tmp_path_factory: pytest.TempPathFactory) -> DataAccess:
    from evaluation.data.fixtures import write_fixtures

    root = write_fixtures(tmp_path_factory.mktemp("sizes") / "fx", n_per_split=8, n_train=40,
                          tasks=[SIQA])  # fmt: skip
    return DataAccess("local", str(root), None, None, None, None)


def ids(examples: list) -> list[str]:
    return [e.id for e in examples]


def test_a_cap_keeps_a_fixed_subset_in_order(access: DataAccess) -> None:
    every = ids(access.train(SIQA))
    assert len(every) == 40
    ten = ids(replace(access, train_caps={"siqa": 10}).train(SIQA))
    assert len(ten) == 10 and set(ten) <= set(every)
    assert ten == sorted(ten, key=every.index)  # the data's order, not the draw's
    assert ten == ids(replace(access, train_sizes={"siqa": 10}).train(SIQA))  # same subset
    assert ten != every[:10]  # a draw over the whole set, not its head
    assert ids(replace(access, train_caps={"siqa": 99}).train(SIQA)) == every  # at most


def test_an_arm_asking_for_more_examples_than_there_are_is_a_user_error(access) -> None:
    with pytest.raises(UserError, match=r"siqa: 40 training examples, fewer than the n=41"):
        replace(access, train_sizes={"siqa": 41}).train(SIQA)
