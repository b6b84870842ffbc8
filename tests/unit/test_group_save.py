"""GroupSave: the items several threads queue for one key are recorded together, and every
caller gets the outcome of the save that recorded its items."""

from __future__ import annotations

import threading
import time

import pytest

from fgd_core.application.group_save import GroupSave


def test_threads_queued_behind_a_save_are_recorded_in_one_group() -> None:
    group: GroupSave[int] = GroupSave()
    recorded: list[list[int]] = []
    first_inside = threading.Event()
    release = threading.Event()

    def record(items: list[int]) -> None:
        recorded.append(items)
        if len(recorded) == 1:
            first_inside.set()
            release.wait(5)

    first = threading.Thread(target=group.save, args=("s", [0], record))
    first.start()
    assert first_inside.wait(5)
    others = [threading.Thread(target=group.save, args=("s", [i], record)) for i in (1, 2, 3)]
    for t in others:
        t.start()
    time.sleep(0.2)  # the three are queued behind the first save
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert recorded[0] == [0]
    assert sorted(recorded[1]) == [1, 2, 3] and len(recorded) == 2


def test_every_caller_of_a_failed_group_gets_its_exception() -> None:
    group: GroupSave[int] = GroupSave()
    inside, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def record(items: list[int]) -> None:
        if items == [0]:
            inside.set()
            release.wait(5)
            return
        raise RuntimeError(f"lost {sorted(items)}")

    def call(i: int) -> None:
        try:
            group.save("s", [i], record)
        except RuntimeError as exc:
            errors.append(exc)

    first = threading.Thread(target=call, args=(0,))
    first.start()
    assert inside.wait(5)
    others = [threading.Thread(target=call, args=(i,)) for i in (1, 2)]
    for t in others:
        t.start()
    time.sleep(0.2)
    release.set()
    for t in [first, *others]:
        t.join(5)
    assert [str(e) for e in errors] == ["lost [1, 2]", "lost [1, 2]"]


def test_other_keys_are_saved_apart() -> None:
    group: GroupSave[str] = GroupSave()
    seen: list[list[str]] = []
    group.save("a", ["x"], seen.append)
    group.save("b", ["y"], seen.append)
    assert seen == [["x"], ["y"]]
    with pytest.raises(ValueError):
        group.save("a", ["z"], lambda items: (_ for _ in ()).throw(ValueError("no")))

