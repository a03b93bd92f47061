from hotline.asterisk.ari_events import Channel
from hotline.engine.leg import channel_kind, customer_key
from hotline.text import clean_text


def channel(num: str = "", name: str = "PJSIP/sipp-trunk-00000001") -> Channel:
    return Channel(id="1", name=name, state="Ring", caller_num=num)


def test_caller_id_with_control_characters_is_cleaned_not_refused() -> None:
    assert clean_text("Ivan\x00\r\n Petrov\x07") == "Ivan Petrov"


def test_customer_key_is_the_callers_e164_number() -> None:
    assert customer_key(channel("8 (495) 123-45-67"), "RU") == "+74951234567"


def test_customer_key_of_a_sip_caller_is_their_sip_name() -> None:
    assert customer_key(channel("alice"), "RU") == "sip:alice"


def test_anonymous_caller_is_keyed_by_endpoint() -> None:
    assert customer_key(channel(""), "RU") == "anonymous:sipp-trunk"


def test_dialled_telephone_number_means_pstn_and_sip_address_means_sip() -> None:
    assert channel_kind(channel(), "+74951234567") == "pstn"
    assert channel_kind(channel(), None) == "sip"


def test_a_browser_without_an_id_of_its_own_is_anonymous_never_the_shared_endpoints_name() -> None:
    browser = channel("hotline-web", name="PJSIP/hotline-web-0000002a")
    assert customer_key(browser, "RU") == "anonymous:hotline-web"  # never continues another's case
    assert customer_key(browser, "RU", "c0ffee") == "web:c0ffee"
