"""Who is calling: principals with a role and, for road-works teams, the communes they act in.

Keys are never stored, only their SHA-256; a request's key is hashed and looked up.
"""

from __future__ import annotations

import hashlib
import secrets
import tomllib
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Role(StrEnum):
    ROADWORKS = "roadworks"
    PARTNER = "partner"
    OPERATOR = "operator"
    ADMIN = "admin"


class Principal(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    role: Role
    communes: frozenset[Annotated[str, Field(pattern=r"^\d[0-9AB]\d{3}$")]] = frozenset()
    key_sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]

    @model_validator(mode="after")
    def _roadworks_have_communes(self) -> Principal:
        if self.role is Role.ROADWORKS and not self.communes:
            raise ValueError(f"roadworks principal {self.name!r} needs at least one commune")
        return self


class _PrincipalsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    principals: list[Principal] = []  # an empty file (every key revoked) is valid: everybody gets 401


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class AuthFileError(ValueError):
    pass


@dataclass(frozen=True)
class Principals:
    by_hash: dict[str, Principal] = field(default_factory=dict)

    def authenticate(self, key: str) -> Principal | None:
        return self.by_hash.get(hash_key(key))

    @classmethod
    def of(cls, principals: list[Principal]) -> Principals:
        return cls({p.key_sha256: p for p in principals})

    @classmethod
    def load(cls, path: Path) -> Principals:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise AuthFileError(f"principals file {path}: {exc}") from exc
        return cls.parse(text, source=str(path))

    @classmethod
    def parse(cls, text: str, source: str) -> Principals:
        """The principals of a file's text; AuthFileError says what is wrong (never echoing a hash)."""
        try:
            parsed = _PrincipalsFile.model_validate(tomllib.loads(text))
        except (tomllib.TOMLDecodeError, ValidationError) as exc:
            raise AuthFileError(f"principals file {source}: {exc}") from exc
        names = [p.name for p in parsed.principals]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise AuthFileError(f"principals file {source}: duplicate principal names: {', '.join(duplicates)}")
        if len({p.key_sha256 for p in parsed.principals}) != len(names):
            raise AuthFileError(f"principals file {source}: two principals share one key hash")
        return cls.of(parsed.principals)


class KeyStore:
    """The principals in force. `traffic-hub keys` edits are swapped in with one assignment, so a request
    sees the old set or the new one, never a mix; routes authenticate through this, never a file."""

    def __init__(self, principals: Principals) -> None:
        self._principals = principals

    def authenticate(self, key: str) -> Principal | None:
        return self._principals.authenticate(key)

    def replace(self, principals: Principals) -> None:
        self._principals = principals


@dataclass(frozen=True)
class DemoKey:
    principal: Principal
    key: str


DEMO_KEY_PREFIX = "demo-"


def demo_principals(known_communes: set[str], stored: dict[str, str] | None = None) -> list[DemoKey]:
    """The demo principals, with the `stored` keys (name → key) where there are some, else fresh random ones."""
    specs = [
        ("demo-voirie-lille", Role.ROADWORKS, {"59350"}),
        ("demo-voirie-roubaix", Role.ROADWORKS, {"59512"}),
        ("demo-mel-voirie", Role.ROADWORKS, known_communes),
        ("demo-waze", Role.PARTNER, set()),
        ("demo-operator", Role.OPERATOR, set()),
        ("demo-admin", Role.ADMIN, set()),
    ]
    out: list[DemoKey] = []
    for name, role, communes in specs:
        key = (stored or {}).get(name) or f"{DEMO_KEY_PREFIX}{secrets.token_urlsafe(18)}"
        principal = Principal(name=name, role=role, communes=frozenset(communes), key_sha256=hash_key(key))
        out.append(DemoKey(principal, key))
    return out
