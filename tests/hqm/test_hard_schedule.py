"""AJL schedule (method.md §8.4)."""

from __future__ import annotations

import pytest

from hqm.errors import HqmError
from hqm.models.schedule import HardStreamSchedule


def test_strict_alternation_restarts_with_gbs_each_epoch():
    s = HardStreamSchedule("hqm", "strict", seed=42, rank=0)
    assert [s.stream(0, i) for i in range(5)] == ["gbs", "amm", "gbs", "amm", "gbs"]
    assert [s.stream(1, i) for i in range(3)] == ["gbs", "amm", "gbs"]
    assert HardStreamSchedule("hqm", "strict", seed=1, rank=3).stream(7, 5) == "amm"


def test_single_stream_methods_and_qpic():
    assert {HardStreamSchedule("gbs").stream(0, i) for i in range(6)} == {"gbs"}
    assert {HardStreamSchedule("amm").stream(2, i) for i in range(6)} == {"amm"}
    assert HardStreamSchedule("qpic").stream(0, 0) is None


def test_random_alternation_is_seeded_per_rank_and_starts_with_gbs():
    a = HardStreamSchedule("hqm", "random", seed=42, rank=0)
    b = HardStreamSchedule("hqm", "random", seed=42, rank=1)
    steps = range(1, 401)
    seq_a = [a.stream(3, i) for i in steps]
    assert a.stream(3, 0) == b.stream(3, 0) == a.stream(4, 0) == "gbs"
    assert seq_a == [HardStreamSchedule("hqm", "random", seed=42, rank=0).stream(3, i) for i in steps]
    assert seq_a != [b.stream(3, i) for i in steps]
    assert seq_a != [a.stream(4, i) for i in steps]
    assert 150 < seq_a.count("gbs") < 250
    assert seq_a != ["gbs", "amm"] * 200 and seq_a != ["amm", "gbs"] * 200


def test_bad_names_are_rejected():
    with pytest.raises(HqmError, match="hard-stream schedule: unknown method 'detr' \\(known: qpic, gbs, amm, hqm\\)"):
        HardStreamSchedule("detr")
    with pytest.raises(HqmError, match="unknown alternation 'sometimes'"):
        HardStreamSchedule("hqm", "sometimes")
