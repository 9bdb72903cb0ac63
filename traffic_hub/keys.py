"""The principals file: edited safely by `traffic-hub keys`, followed live by a running hub.

A sysadmin used to make a key with a `printf | sha256sum` line and restart the hub. Here `keys add`
makes the key, prints it once and stores only its SHA-256; `keys revoke` removes a principal; both
rewrite the file atomically (temp file + rename, under a lock) and keep the rest of it as written,
comments included. A running hub polls the file's stamp off the event loop and swaps its principals
in one assignment; a broken file keeps the previous principals and logs an error, so a typo in the
file never locks everybody out.

`make run`'s demo principals live in the same format in the local run dir, with their keys beside
them, so a partner URL or a map link keeps working across restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import re
import secrets
import tempfile
import tomllib
from collections.abc import AsyncIterator, Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from traffic_hub.auth import (
    DEMO_KEY_PREFIX,
    AuthFileError,
    DemoKey,
    Principal,
    Principals,
    Role,
    demo_principals,
    hash_key,
)

log = logging.getLogger(__name__)

HEADER = re.compile(r"^\s*\[\[\s*principals\s*\]\]", re.MULTILINE)
NEW_FILE_MODE = 0o600
KEY_PREFIX = "thk_"  # recognisable by secret scanners and by people


class KeysError(ValueError):
    """A `keys` command that cannot be done; the message says why and what to do."""


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def read_principals(path: Path) -> list[Principal]:
    """The principals in `path`, in file order; an absent file has none."""
    if not path.exists():
        return []
    try:
        return list(Principals.load(path).by_hash.values())
    except AuthFileError as exc:
        raise KeysError(f"{exc}\nfix the file by hand first; nothing was changed") from exc


def make_principal(name: str, role: Role, communes: Collection[str], key: str, known: Collection[str]) -> Principal:
    """A validated principal, or a KeysError naming what is wrong."""
    unknown = sorted(set(communes) - set(known))
    if unknown:
        raise KeysError(f"not MEL commune INSEE codes: {', '.join(unknown)} (e.g. 59350 Lille, 59512 Roubaix)")
    if role is Role.ROADWORKS and not communes:
        raise KeysError("a roadworks principal needs at least one --commune INSEE code")
    if role is not Role.ROADWORKS and communes:
        raise KeysError(f"--commune only applies to roadworks principals, not to {role.value}")
    try:
        return Principal(name=name, role=role, communes=frozenset(communes), key_sha256=hash_key(key))
    except ValidationError as exc:
        raise KeysError(f"invalid principal: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    if where == "name":
        return "name must be 1-64 letters, digits, '.', '_' or '-'"
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def principal_toml(principal: Principal) -> str:
    """One `[[principals]]` table in the contract's layout (names and codes are validated, no escaping needed)."""
    communes = ", ".join(f'"{c}"' for c in sorted(principal.communes))
    return (
        f'[[principals]]\nname = "{principal.name}"\nrole = "{principal.role.value}"\n'
        f"communes = [{communes}]\nkey_sha256 = \"{principal.key_sha256}\"\n"
    )


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Serialise concurrent `keys` commands on one file by locking its folder (no lock file left behind)."""
    folder = path.resolve().parent
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` in one rename: a reader sees the old file or the new one, never half.

    A symlinked file is replaced at its target (the link stays); mode and, when allowed, owner are kept,
    so a hub running as another user can still read the file after root edited it.
    """
    target = path.resolve()
    old = target.stat() if target.exists() else None
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, old.st_mode & 0o777 if old else NEW_FILE_MODE)
        if old is not None and (old.st_uid, old.st_gid) != (os.getuid(), os.getgid()):
            with contextlib.suppress(PermissionError):
                os.chown(tmp, old.st_uid, old.st_gid)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _checked(path: Path, text: str) -> str:
    """`text` if it is a valid principals file, else KeysError (the file on disk stays as it was)."""
    try:
        Principals.parse(text, source=str(path))
    except AuthFileError as exc:
        raise KeysError(f"refusing to write an invalid principals file: {exc}") from exc
    return text


def add_principal(path: Path, principal: Principal) -> None:
    """Append `principal` to the file (created when absent); a duplicate name is refused."""
    with locked(path):
        existing = read_principals(path)
        if any(p.name == principal.name for p in existing):
            raise KeysError(
                f"a principal named {principal.name!r} already exists in {path}; "
                f"revoke it first (traffic-hub keys revoke {principal.name}) or choose another name"
            )
        if any(p.key_sha256 == principal.key_sha256 for p in existing):
            raise KeysError("this key is already in use; run the command again for a fresh one")
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        separator = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
        write_atomically(path, _checked(path, text + separator + principal_toml(principal)))


def revoke_principal(path: Path, name: str) -> Principal:
    """Remove the principal called `name` from the file; returns it. The rest of the file is kept as written."""
    with locked(path):
        existing = {p.name: p for p in read_principals(path)}
        if name not in existing:
            known = ", ".join(sorted(existing)) or "none"
            raise KeysError(f"no principal named {name!r} in {path} (known: {known})")
        text = path.read_text(encoding="utf-8")
        write_atomically(path, _checked(path, _without(text, name, list(existing.values()))))
        return existing[name]


def _without(text: str, name: str, principals: list[Principal]) -> str:
    """`text` minus the `[[principals]]` table of `name`; rewritten whole if the file has another layout."""
    starts = [m.start() for m in HEADER.finditer(text)]
    chunks = [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]
    for index, chunk in enumerate(chunks):
        if _chunk_name(chunk) == name:
            kept = text[: starts[index]] + "".join(chunks[index + 1 :])
            with contextlib.suppress(AuthFileError):
                if name not in {p.name for p in Principals.parse(kept, source="").by_hash.values()}:
                    return kept
    return "\n".join(principal_toml(p) for p in principals if p.name != name)


def _chunk_name(chunk: str) -> str | None:
    with contextlib.suppress(tomllib.TOMLDecodeError, KeyError, IndexError, TypeError):
        return str(tomllib.loads(chunk)["principals"][0]["name"])
    return None


# ---------------------------------------------------------------------------------------------- the running hub


@dataclass(frozen=True)
class Stamp:
    """What changes when the file is rewritten in place or replaced by a rename."""

    mtime_ns: int
    size: int
    inode: int


def stamp(path: Path) -> Stamp | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return Stamp(st.st_mtime_ns, st.st_size, st.st_ino)


class PrincipalsWatcher:
    """Polls the principals file and hands every valid new version to `apply`; a broken one is logged and skipped."""

    def __init__(self, path: Path, apply: Callable[[Principals], None], interval_s: float = 1.0) -> None:
        self.path = path
        self.apply = apply
        self.interval_s = interval_s
        self.reloads = 0
        self._last: Stamp | None = None
        self._current: Principals | None = None

    async def run(self) -> None:
        self._last = await asyncio.to_thread(stamp, self.path)
        self._current = await self._load(self._last)  # the file may have changed since the hub read it
        while True:
            await asyncio.sleep(self.interval_s)
            await self.check()

    async def check(self) -> None:
        now = await asyncio.to_thread(stamp, self.path)
        if now == self._last:
            return
        self._last = now
        principals = await self._load(now)
        if principals is not None and principals != self._current:
            self.reloads += 1
            log.info("principals file %s reloaded: %d principals", self.path, len(principals.by_hash))
        self._current = principals or self._current

    async def _load(self, now: Stamp | None) -> Principals | None:
        if now is None:
            log.error("principals file %s is missing: keeping the previous principals", self.path)
            return None
        try:
            principals = await asyncio.to_thread(Principals.load, self.path)
        except AuthFileError as exc:
            log.error("%s: keeping the previous principals until the file is fixed", exc)
            return None
        self.apply(principals)
        return principals


@contextlib.asynccontextmanager
async def watching(path: Path | None, apply: Callable[[Principals], None], interval_s: float = 1.0) -> AsyncIterator[
    PrincipalsWatcher | None
]:
    """Follow `path` (when there is one) for as long as the context lasts."""
    if path is None:
        yield None
        return
    watcher = PrincipalsWatcher(path, apply, interval_s)
    task = asyncio.create_task(watcher.run(), name="principals-watch")
    try:
        yield watcher
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ---------------------------------------------------------------------------------------------- make run's demo

def demo_keys(run_dir: Path, known_communes: set[str]) -> tuple[Path, list[DemoKey]]:
    """`make run`'s demo principals: created once in `run_dir`, the same keys at every start after.

    `run_dir/demo-keys.toml` keeps the demo keys themselves (demo only, mode 0600) so they can be
    printed again; `run_dir/principals.toml` is an ordinary principals file, the hub's auth file,
    where `traffic-hub keys add … --file` adds more. Returns that file and the demo keys.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    keys_file, principals_file = run_dir / "demo-keys.toml", run_dir / "principals.toml"
    with locked(principals_file):
        stored = _stored_demo_keys(keys_file)
        out = demo_principals(known_communes, stored)
        if {k.principal.name: k.key for k in out} != stored:
            rows = "".join(f'[[keys]]\nname = "{k.principal.name}"\nkey = "{k.key}"\n\n' for k in out)
            write_atomically(keys_file, "# make run's demo keys (demo only); delete this file for new ones\n\n" + rows)
        _ensure_in_file(principals_file, [k.principal for k in out])
    return principals_file, out


def _stored_demo_keys(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    try:
        rows = tomllib.loads(path.read_text(encoding="utf-8")).get("keys", [])
        return {str(r["name"]): str(r["key"]) for r in rows if str(r.get("key", "")).startswith(DEMO_KEY_PREFIX)}
    except (tomllib.TOMLDecodeError, KeyError, TypeError, AttributeError):
        log.warning("demo keys file %s is unreadable: making new demo keys", path)
        return {}


def _ensure_in_file(path: Path, principals: list[Principal]) -> None:
    """Every demo principal present in the file with its current hash; other principals are kept."""
    wanted = {p.name: p for p in principals}
    existing = list(Principals.load(path).by_hash.values()) if path.exists() else []  # broken: AuthFileError
    if all(wanted[p.name] == p for p in existing if p.name in wanted) and wanted.keys() <= {p.name for p in existing}:
        return
    kept = [p for p in existing if p.name not in wanted]
    write_atomically(path, "\n".join(principal_toml(p) for p in [*principals, *kept]))
