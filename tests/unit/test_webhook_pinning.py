"""A webhook is delivered to the address that was checked, addressed to its own host."""

from __future__ import annotations

import pytest

from bdisc.app.webhooks import credentials, pinned
from bdisc.errors import ConfigError


def test_the_url_goes_to_the_checked_address_and_keeps_its_host() -> None:
    target, headers, extensions = pinned("https://hooks.example.org:8443/in?x=1", "93.184.215.14")
    assert target == "https://93.184.215.14:8443/in?x=1"
    assert headers == {"Host": "hooks.example.org:8443"}
    assert extensions == {"sni_hostname": "hooks.example.org"}  # TLS checks the name
    target, headers, extensions = pinned("http://hooks.example.org/in", "2606:2800:220:1::")
    assert target == "http://[2606:2800:220:1::]/in"
    assert headers == {"Host": "hooks.example.org"} and extensions == {}


def test_credentials_become_basic_auth_and_names_their_ascii_form() -> None:
    url = "https://us%40er:p%3Ass@hooks.example.org/in"
    target, headers, _ = pinned(url, "93.184.215.14")
    assert target == "https://93.184.215.14/in"  # not in the URL sent: in Authorization
    assert credentials(url) == ("us@er", "p:ss")
    assert credentials("https://hooks.example.org/in") is None
    _, headers, extensions = pinned("https://bücher.example/in", "93.184.215.14")
    assert headers == {"Host": "xn--bcher-kva.example"}
    assert extensions == {"sni_hostname": "xn--bcher-kva.example"}
    with pytest.raises(ConfigError):
        pinned("https://" + "a" * 70 + ".example/in", "93.184.215.14")  # label too long
