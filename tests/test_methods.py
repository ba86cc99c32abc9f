"""The method registry: one entry per method, consistent streams, keys and layouts."""

import pytest

from hqm.errors import HqmError
from hqm.methods import METHOD_NAMES, get_method


def test_registry_matches_the_published_variants():
    assert METHOD_NAMES == ("qpic", "gbs", "amm", "hqm")
    assert get_method("qpic").streams == () and get_method("qpic").weight_layout == "qpic"
    assert get_method("hqm").alternates and not get_method("gbs").alternates
    for name in ("gbs", "amm", "hqm"):
        method = get_method(name)
        assert method.weight_layout == "hqm"
        assert set(method.streams) <= set(method.hard_query_keys)  # a stream reads its own section
        assert "loss_weight" in method.hard_query_keys
    assert get_method("hqm").default_loss_weight == 0.8


def test_unknown_method_names_where():
    with pytest.raises(HqmError, match=r"variants\.x\.method: unknown method 'foo'"):
        get_method("foo", where="variants.x.method")
