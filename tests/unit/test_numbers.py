import pytest
from hypothesis import given
from hypothesis import strategies as st

from hotline.errors import NumberError
from hotline.numbers import normalise, to_e164


@pytest.mark.parametrize("typed", ["8 (495) 123-45-67", "+7 495 1234567", "84951234567", "7-495-123-45-67"])
def test_moscow_number_as_people_type_it_normalises_to_e164(typed: str) -> None:
    assert normalise(typed) == normalise("+74951234567")
    assert normalise(typed).e164 == "+74951234567"
    assert normalise(typed).kind == "city"


def test_8_800_number_is_tollfree() -> None:
    number = normalise("8-800-555-35-35")
    assert (number.e164, number.kind) == ("+78005553535", "tollfree")


def test_mobile_number_is_mobile() -> None:
    assert normalise("+7 913 123-45-67").kind == "mobile"


@pytest.mark.parametrize("bad", ["", "   ", "abc", "1000", "+7 495 12", "8 (495) 123\n45-67",
                                 "+7495\x001234567"])
def test_what_is_not_a_number_is_refused_with_the_value_named(bad: str) -> None:
    with pytest.raises(NumberError) as info:
        normalise(bad)
    assert repr(bad) in str(info.value)


def test_sip_extension_has_no_e164() -> None:
    assert to_e164("1000") is None
    assert to_e164("video-support") is None


@given(st.text(max_size=40))
def test_normalise_never_raises_anything_but_number_error(text: str) -> None:
    try:
        result = normalise(text)
    except NumberError:
        return
    assert result.e164.startswith("+") and result.e164[1:].isdigit()
