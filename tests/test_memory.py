"""The up-front memory check: an allocation beyond what is available is a ValueError with
the estimate and the alternative; one within it passes."""

import pytest

from latentspace._memory import available_bytes, check_allocation, format_bytes


def test_available_is_positive_and_below_a_petabyte():
    avail = available_bytes()
    assert 0 < avail < 1 << 50


def test_beyond_available_is_a_value_error_with_estimate_and_alternative():
    avail = available_bytes()
    with pytest.raises(ValueError, match=r"needs about .* only .* available .*use the other"):
        check_allocation(4.0 * avail + 1e9, "the test's matrix", "use the other solver")


def test_within_available_passes():
    check_allocation(1024.0, "a kilobyte", "nothing")


@pytest.mark.parametrize("n, text", [(512, "512 bytes"), (1536, "1.5 KiB"), (3 << 30, "3.0 GiB")])
def test_format_bytes(n, text):
    assert format_bytes(n) == text
