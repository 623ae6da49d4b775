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
