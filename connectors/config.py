"""The connectors file (TOML, `[[connectors]]`): which sources to poll, how often, with what limits.

```toml
[[connectors]]
name = "waze-mel"
kind = "waze-partner-feed"    # waze-partner-feed | datex2 | wzdx | cifs | geojson | dialog
url = "https://…"             # kind dialog: defaults to the national base, DIALOG_URL
interval_s = 60               # >= 5
timeout_s = 10                # whole request, connect to last byte
max_bytes = 20971520          # the body is abandoned beyond this
enabled = true
headers = { Authorization = "Bearer …" }   # secrets: never logged, never shown
options = { }                 # handed to the parser (e.g. a GeoJSON field mapping)
follow_redirects = true       # follow redirects on the same host (false: a redirect is an error)
allow_redirect_hosts = []     # other hosts a redirect may lead to (configured headers are never sent there)
allow_private = false         # true: the source may be on loopback / a private or link-local network
```

`file://` URLs are refused unless the caller allows them (the bundled demo replays local files).
Intervals below 5 s are refused unless the caller says it is testing.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

Kind = Literal["waze-partner-feed", "datex2", "wzdx", "cifs", "geojson", "dialog"]
KINDS: tuple[str, ...] = get_args(Kind)

MIN_INTERVAL_S = 5.0
MIN_TESTING_INTERVAL_S = 0.1
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DIALOG_URL = "https://dialog.beta.gouv.fr/api/regulations.xml"  # the national regulation base (kind dialog)
DIALOG_MAX_BYTES = 512 * 1024 * 1024  # its document lists every French order: read order by order (connectors.dialog)


class ConnectorsFileError(ValueError):
    """The connectors file cannot be used; the message names the file, the connector and the field."""


class ConnectorConfig(BaseModel):
    """One source. Validate with `context={"testing": True}` / `{"allow_file": True}` to relax limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    kind: Kind
    url: str
    interval_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    max_bytes: Annotated[int, Field(ge=1, le=512 * 1024 * 1024)] = DEFAULT_MAX_BYTES
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    options: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    follow_redirects: bool = True
    allow_redirect_hosts: list[str] = Field(default_factory=list)
    allow_private: bool = False

    @model_validator(mode="before")
    @classmethod
    def _dialog_defaults(cls, data: Any) -> Any:
        """A `dialog` connector: the national base's URL and room for its document (all of France) unless given."""
        if isinstance(data, dict) and data.get("kind") == "dialog":
            return {**data, "url": data.get("url") or DIALOG_URL, "max_bytes": data.get("max_bytes", DIALOG_MAX_BYTES)}
        return data

    @field_validator("allow_redirect_hosts")
    @classmethod
    def _redirect_hosts(cls, value: list[str]) -> list[str]:
        hosts = []
        for host in value:
            name = host.strip().lower().rstrip(".")
            if not name or not all(c.isalnum() or c in ".-:[]" for c in name):
                raise ValueError(f"{host!r} is not a host name (write the host only, without scheme or path)")
            hosts.append(name)
        return hosts

    @field_validator("interval_s")
    @classmethod
    def _interval_floor(cls, value: float, info: ValidationInfo) -> float:
        floor = MIN_TESTING_INTERVAL_S if _flag(info, "testing") else MIN_INTERVAL_S
        if value < floor:
            raise ValueError(f"must be at least {floor:g} seconds")
        return value

    @field_validator("url")
    @classmethod
    def _url_scheme(cls, value: str, info: ValidationInfo) -> str:
        parts = urlsplit(value)
        if parts.scheme in ("http", "https"):
            if not parts.hostname:
                raise ValueError("an http(s) URL needs a host")
            return value
        if parts.scheme == "file":
            if not _flag(info, "allow_file"):
                raise ValueError("file:// URLs are only allowed for the bundled demo")
            if not parts.path:
                raise ValueError("a file:// URL needs a path")
            return value
        raise ValueError("must be an http:// or https:// URL")

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name in value:
            if not name or not all(33 <= ord(c) <= 126 and c != ":" for c in name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
        for name, secret in value.items():
            if not all(32 <= ord(c) <= 126 or c == "\t" for c in secret.get_secret_value()):
                raise ValueError(f"the value of header {name!r} must be printable ASCII (the value is not shown)")
        return value

    def request_headers(self) -> dict[str, str]:
        """The configured headers with their secret values revealed (for the request only)."""
        return {name: secret.get_secret_value() for name, secret in self.headers.items()}


def _flag(info: ValidationInfo, name: str) -> bool:
    context = info.context
    return bool(isinstance(context, dict) and context.get(name))


def parse_connectors(
    text: str, *, origin: str = "connectors file", allow_file: bool = False, testing: bool = False
) -> list[ConnectorConfig]:
    """Parse the TOML text of a connectors file; raise ConnectorsFileError naming what is wrong."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConnectorsFileError(f"{origin}: not valid TOML: {exc}") from exc
    unknown = sorted(set(document) - {"connectors"})
    if unknown:
        raise ConnectorsFileError(f"{origin}: unknown top-level key(s) {unknown}; expected [[connectors]] tables")
    rows = document.get("connectors", [])
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ConnectorsFileError(f"{origin}: `connectors` must be an array of tables ([[connectors]])")
    context = {"allow_file": allow_file, "testing": testing}
    configs = [_one(row, index, origin, context) for index, row in enumerate(rows, start=1)]
    _refuse_duplicates(configs, origin)
    return configs


def load_connectors(path: Path, *, allow_file: bool = False, testing: bool = False) -> list[ConnectorConfig]:
    """Read a connectors file; raise ConnectorsFileError naming the connector and field at fault."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConnectorsFileError(f"{path}: cannot read the connectors file: {exc}") from exc
    return parse_connectors(text, origin=str(path), allow_file=allow_file, testing=testing)


def _one(row: dict[str, Any], index: int, origin: str, context: dict[str, bool]) -> ConnectorConfig:
    name = row.get("name")
    label = f"connector {name!r} (#{index})" if isinstance(name, str) else f"connector #{index}"
    try:
        return ConnectorConfig.model_validate(row, context=context)
    except ValidationError as exc:
        problems = "; ".join(_describe(error) for error in exc.errors(include_url=False, include_input=False))
        raise ConnectorsFileError(f"{origin}: {label}: {problems}") from None


def _describe(error: Any) -> str:
    loc = error.get("loc", ())
    field = ".".join(str(part) for part in loc) or "?"  # names only: input values (secrets) are never echoed
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"field `{field}`: {message}"


def _refuse_duplicates(configs: list[ConnectorConfig], origin: str) -> None:
    seen: set[str] = set()
    for config in configs:
        if config.name in seen:
            raise ConnectorsFileError(f"{origin}: connector {config.name!r} is defined twice; names must be unique")
        seen.add(config.name)
