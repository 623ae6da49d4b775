"""The deterministic interleaving of inputs."""

from streams.host.merge import Merger, Stamped


def stamped(ts: int, rank: int, partition: int, offset: int) -> Stamped[str]:
    return Stamped(ts, rank, partition, offset, f"{rank}/{partition}@{offset}")


def test_records_come_out_in_event_time_order_across_inputs() -> None:
    merger: Merger[str] = Merger({(0, 0), (1, 0)})
    for record in (stamped(10, 0, 0, 0), stamped(30, 0, 0, 1), stamped(20, 1, 0, 0), stamped(40, 1, 0, 1)):
        merger.add(record)
    released = [r.item for r in merger.release(lambda _source: True)]
    assert released == ["0/0@0", "1/0@0", "0/0@1", "1/0@1"]


def test_nothing_is_released_while_another_input_may_still_deliver_earlier_records() -> None:
    merger: Merger[str] = Merger({(0, 0), (1, 0)})
    merger.add(stamped(10, 0, 0, 0))
    assert list(merger.release(lambda _source: False)) == []
    merger.add(stamped(5, 1, 0, 0))
    assert [r.item for r in merger.release(lambda _source: False)] == ["1/0@0"]  # the other input has a head again
    assert [r.item for r in merger.release(lambda source: source == (1, 0))] == ["0/0@0"]


def test_ties_go_by_topic_rank_then_partition_then_offset() -> None:
    merger: Merger[str] = Merger({(0, 1), (1, 0), (0, 0)})
    for record in (stamped(7, 1, 0, 3), stamped(7, 0, 1, 9), stamped(7, 0, 0, 4)):
        merger.add(record)
    assert [r.item for r in merger.release(lambda _source: True)] == ["0/0@4", "0/1@9", "1/0@3"]


def test_a_partition_is_read_in_offset_order_even_when_its_event_times_go_back() -> None:
    merger: Merger[str] = Merger({(0, 0)})
    merger.add(stamped(50, 0, 0, 0))
    merger.add(stamped(40, 0, 0, 1))
    assert [r.item for r in merger.release(lambda _source: True)] == ["0/0@0", "0/0@1"]


def test_co_partitioned_inputs_wait_only_for_their_own_partition_number_and_the_broadcast_inputs() -> None:
    # Ranks 0 and 1 partitioned (partitions 0 and 1 each), rank 2 broadcast.
    merger: Merger[str] = Merger({(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)}, broadcast={2})
    merger.add(stamped(10, 0, 0, 0))
    merger.add(stamped(20, 2, 0, 0))
    # Partition 1 of rank 1 still may deliver something: it holds partition 1 of rank 0, not partition 0.
    quiet_but_one = {(0, 1), (1, 0)}
    assert [r.item for r in merger.release(lambda source: source in quiet_but_one)] == ["0/0@0"]
    # The tick (broadcast) is ordered against every partition, so it waits for (1, 1).
    assert [r.item for r in merger.release(lambda source: source in quiet_but_one)] == []
    # A later record of partition 0 may not overtake the held tick; an earlier one of partition 1 may go first.
    merger.add(stamped(30, 0, 0, 1))
    merger.add(stamped(15, 1, 1, 0))
    assert [r.item for r in merger.release(lambda source: source in quiet_but_one)] == ["1/1@0"]
    assert [r.item for r in merger.release(lambda _source: True)] == ["2/0@0", "0/0@1"]


def test_without_broadcast_ranks_every_source_is_ordered_against_every_other() -> None:
    merger: Merger[str] = Merger({(0, 0), (0, 1)})
    merger.add(stamped(10, 0, 0, 0))
    assert list(merger.release(lambda _source: False)) == []


def test_a_broadcast_head_waits_only_until_the_others_are_drained_not_for_their_grace() -> None:
    merger: Merger[str] = Merger({(0, 0), (1, 0)}, broadcast={1})
    merger.add(stamped(10, 1, 0, 0))
    # (0, 0) has nothing more fetched but is within its grace period: the tick waits for it only if told nothing else.
    assert list(merger.release(lambda _source: False)) == []
    assert [r.item for r in merger.release(lambda _source: False, lambda _source: True)] == ["1/0@0"]
    # A partitioned head still waits for the grace period of the broadcast source.
    merger.add(stamped(20, 0, 0, 0))
    assert list(merger.release(lambda _source: False, lambda _source: True)) == []
    assert [r.item for r in merger.release(lambda source: source == (1, 0), lambda _source: True)] == ["0/0@0"]
