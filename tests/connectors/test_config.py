"""The connectors file: defaults, limits, clear errors naming the connector and field, secrets hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.config import ConnectorConfig, ConnectorsFileError, load_connectors, parse_connectors
from connectors.state import ConnectorState, public_url

CONTRACT_EXAMPLE = """
[[connectors]]
name = "waze-mel"
kind = "waze-partner-feed"
url = "https://example.org/waze/feed?key=abc"
interval_s = 60

[[connectors]]
name = "bison-fute"
kind = "datex2"
url = "https://example.org/datex2/situations.xml"
interval_s = 300
timeout_s = 20
max_bytes = 1048576
enabled = false
headers = { Authorization = "Bearer top-secret-token" }
options = { country = "fr" }
"""


def test_the_contract_example_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(CONTRACT_EXAMPLE, encoding="utf-8")

    waze, bison = load_connectors(path)

    assert (waze.name, waze.kind, waze.interval_s, waze.timeout_s) == ("waze-mel", "waze-partner-feed", 60, 10)
    assert waze.max_bytes == 20 * 1024 * 1024
    assert waze.enabled
    assert waze.headers == {}
    assert (bison.enabled, bison.max_bytes, bison.options) == (False, 1048576, {"country": "fr"})
    assert bison.request_headers() == {"Authorization": "Bearer top-secret-token"}


def test_header_values_never_show(tmp_path: Path) -> None:
    bison = parse_connectors(CONTRACT_EXAMPLE)[1]

    assert "top-secret-token" not in repr(bison)
    assert "top-secret-token" not in str(bison.model_dump())


def test_an_empty_file_has_no_connectors() -> None:
    assert parse_connectors("") == []


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ('name = "a"\nkind = "waze"\nurl = "https://x.org/"', "connector 'a' (#1): field `kind`"),
        ('name = "a"\nkind = "wzdx"\nurl = "https://x.org/"\ninterval_s = 1', "field `interval_s`: must be at least 5"),
        ('name = "a"\nkind = "wzdx"\nurl = "ftp://x.org/f"', "field `url`: must be an http:// or https:// URL"),
        ('name = "a"\nkind = "wzdx"\nurl = "file:///tmp/f.json"', "field `url`: file:// URLs are only allowed"),
        ('name = "a"\nkind = "wzdx"\nurl = "https:///nohost"', "field `url`: an http(s) URL needs a host"),
        ('name = "A b"\nkind = "wzdx"\nurl = "https://x.org/"', "field `name`"),
        ('kind = "wzdx"\nurl = "https://x.org/"', "connector #1: field `name`: Field required"),
        ('name = "a"\nkind = "wzdx"\nurl = "https://x.org/"\ncolour = "red"', "field `colour`: Extra inputs"),
        ('name = "a"\nkind = "wzdx"\nurl = "https://x.org/"\nmax_bytes = 0', "field `max_bytes`"),
    ],
)
def test_errors_name_the_connector_and_the_field(row: str, expected: str) -> None:
    with pytest.raises(ConnectorsFileError) as caught:
        parse_connectors(f"[[connectors]]\n{row}\n", origin="conn.toml")

    assert str(caught.value).startswith("conn.toml: ")
    assert expected in str(caught.value)


def test_a_bad_header_value_is_refused_without_being_echoed() -> None:
    text = '[[connectors]]\nname = "a"\nkind = "wzdx"\nurl = "https://x.org/"\nheaders = { X-Key = "clé-secrète" }\n'

    with pytest.raises(ConnectorsFileError, match="header 'X-Key' must be printable ASCII") as caught:
        parse_connectors(text)

    assert "secrète" not in str(caught.value)


def test_duplicate_names_are_refused() -> None:
    row = '[[connectors]]\nname = "same"\nkind = "cifs"\nurl = "https://x.org/"\n'

    with pytest.raises(ConnectorsFileError, match="connector 'same' is defined twice"):
        parse_connectors(row + row)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[connectors]\nname=", "not valid TOML"),
        ('connectors = "none"', "must be an array of tables"),
        ('[[sources]]\nname = "a"', "unknown top-level key(s) ['sources']"),
    ],
)
def test_malformed_files_say_why(text: str, expected: str) -> None:
    with pytest.raises(ConnectorsFileError) as caught:
        parse_connectors(text)

    assert expected in str(caught.value)


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConnectorsFileError, match="cannot read the connectors file"):
        load_connectors(tmp_path / "absent.toml")


def test_testing_and_demo_relax_interval_and_scheme() -> None:
    text = '[[connectors]]\nname = "demo"\nkind = "geojson"\nurl = "file:///srv/demo.geojson"\ninterval_s = 0.2\n'

    (demo,) = parse_connectors(text, allow_file=True, testing=True)

    assert (demo.url, demo.interval_s) == ("file:///srv/demo.geojson", 0.2)
    with pytest.raises(ConnectorsFileError, match=r"must be at least 0\.1 seconds"):
        parse_connectors(text.replace("0.2", "0.05"), allow_file=True, testing=True)


def test_public_url_hides_credentials_and_query_values() -> None:
    url = "https://user:pw@feeds.example.org:8443/waze/feed.json?key=s3cr3t&format=json#frag"

    assert public_url(url) == "https://feeds.example.org:8443/waze/feed.json?key=***&format=***"
    assert public_url("https://feeds.example.org/plain") == "https://feeds.example.org/plain"


@given(secret=st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=8, max_size=40))
def test_query_secrets_never_reach_the_state(secret: str) -> None:
    cfg = ConnectorConfig(name="w", kind="cifs", url=f"https://x.org/f?token={secret}&k={secret}")
    state = ConnectorState(name=cfg.name, kind=cfg.kind, url=public_url(cfg.url))

    assert secret not in str(state.as_dict())


def test_sources_are_public_and_redirects_same_host_unless_the_file_says_otherwise() -> None:
    default, internal = parse_connectors(
        """
[[connectors]]
name = "public"
kind = "geojson"
url = "https://opendata.example.org/chantiers.geojson"

[[connectors]]
name = "internal"
kind = "datex2"
url = "http://10.0.0.5/situations.xml"
allow_private = true
follow_redirects = true
allow_redirect_hosts = ["Mirror.Example.org"]
"""
    )

    assert (default.allow_private, default.follow_redirects, default.allow_redirect_hosts) == (False, True, [])
    assert (internal.allow_private, internal.allow_redirect_hosts) == (True, ["mirror.example.org"])
    with pytest.raises(ConnectorsFileError, match="allow_redirect_hosts"):
        parse_connectors(
            '[[connectors]]\nname = "x"\nkind = "geojson"\nurl = "https://a.example/"\n'
            'allow_redirect_hosts = ["https://b.example/path"]\n'
        )
