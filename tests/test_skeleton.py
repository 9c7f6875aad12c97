import cleanlist_pandas
from cleanlist_pandas._constants import MAX_UNIT_COST, is_loopback_host


def test_version() -> None:
    assert cleanlist_pandas.__version__ == "0.1.0"


def test_unknown_attribute() -> None:
    import pytest

    with pytest.raises(AttributeError):
        cleanlist_pandas.no_such_name  # noqa: B018


def test_loopback() -> None:
    assert is_loopback_host("127.0.0.1") and is_loopback_host("localhost")
    assert is_loopback_host("[::1]") and is_loopback_host("127.1.2.3")
    assert not is_loopback_host("128.0.0.1") and not is_loopback_host("api.cleanlist.ai")
    assert MAX_UNIT_COST["full"] == 11
