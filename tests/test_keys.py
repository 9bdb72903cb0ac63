"""`traffic-hub keys` and the principals file it edits: a sysadmin's way to make and revoke keys.

The CLI is driven through `cli.main` on temp files; the watcher that lets a running hub follow the
file is tested here without a hub (tests/integration/test_keys_live.py runs it inside one).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.hubs import principals_toml
from traffic_hub.auth import Principals
from traffic_hub.cli import _principals, main
from traffic_hub.keys import PrincipalsWatcher, demo_keys
from traffic_hub.settings import Settings


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def add(capsys: pytest.CaptureFixture[str], path: Path, name: str, *extra: str) -> str:
    code, out, err = run(capsys, "keys", "add", name, *extra, "--file", str(path))
    assert code == 0, err
    return out.split()[-1]  # the key: the last token of the output


def test_add_prints_the_key_once_and_stores_only_its_hash(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "principals.toml"
    key = add(capsys, path, "waze", "--role", "partner")
    text = path.read_text(encoding="utf-8")
    assert key not in text
    assert hashlib.sha256(key.encode()).hexdigest() in text
    principal = Principals.load(path).authenticate(key)
    assert principal is not None
    assert (principal.name, principal.role.value) == ("waze", "partner")
    assert path.stat().st_mode & 0o777 == 0o600  # a new file is private
    assert [p.name for p in tmp_path.iterdir()] == ["principals.toml"]  # no temp or lock file left


def test_roadworks_key_with_communes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "principals.toml"
    key = add(capsys, path, "voirie-lille", "--role", "roadworks", "--commune", "59350", "--commune", "59512")
    key2 = add(capsys, path, "mel", "--role", "roadworks", "--commune", "59350", "59009")
    principals = Principals.load(path)
    assert principals.authenticate(key).communes == {"59350", "59512"}  # type: ignore[union-attr]
    assert principals.authenticate(key2).communes == {"59350", "59009"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["x", "--role", "roadworks"], "at least one --commune"),
        (["x", "--role", "roadworks", "--commune", "75056"], "not MEL commune INSEE codes: 75056"),
        (["x", "--role", "roadworks", "--commune", "lille"], "not MEL commune INSEE codes: lille"),
        (["x", "--role", "partner", "--commune", "59350"], "only applies to roadworks"),
        (["bad name", "--role", "admin"], "name must be"),
        (["existing", "--role", "admin"], "already exists"),
    ],
)
def test_add_refuses_bad_input_and_changes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    path = tmp_path / "principals.toml"
    add(capsys, path, "existing", "--role", "operator")
    before = path.read_bytes()
    code, out, err = run(capsys, "keys", "add", *argv, "--file", str(path))
    assert code == 1
    assert message in err
    assert "thk_" not in out
    assert path.read_bytes() == before


def test_an_unknown_role_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["keys", "add", "x", "--role", "superuser", "--file", str(tmp_path / "p.toml")])
    assert exit_.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert not (tmp_path / "p.toml").exists()


def test_list_shows_names_roles_communes_never_keys_or_whole_hashes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "principals.toml"
    key = add(capsys, path, "voirie-lille", "--role", "roadworks", "--commune", "59350")
    add(capsys, path, "waze", "--role", "partner")
    code, out, _ = run(capsys, "keys", "list", "--file", str(path))
    assert code == 0
    assert "voirie-lille" in out
    assert "roadworks" in out
    assert "59350 Lille" in out
    assert "waze" in out
    digest = hashlib.sha256(key.encode()).hexdigest()
    assert key not in out
    assert digest not in out
    assert digest[:8] in out


def test_revoke_removes_only_that_principal_and_keeps_the_file_as_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "principals.toml"
    path.write_text("# MEL principals, managed by the SI team\n\n" + principals_toml(), encoding="utf-8")
    path.chmod(0o640)
    before = Principals.load(path)
    code, out, _ = run(capsys, "keys", "revoke", "waze", "--file", str(path))
    assert code == 0
    assert "waze" in out
    after = Principals.load(path)
    assert {p.name for p in after.by_hash.values()} == {p.name for p in before.by_hash.values()} - {"waze"}
    assert path.read_text(encoding="utf-8").startswith("# MEL principals, managed by the SI team\n")
    assert path.stat().st_mode & 0o777 == 0o640  # the file's mode is kept
    code, _, err = run(capsys, "keys", "revoke", "waze", "--file", str(path))
    assert code == 1
    assert "no principal named 'waze'" in err


def test_revoking_the_last_principal_leaves_a_valid_empty_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "principals.toml"
    add(capsys, path, "only", "--role", "admin")
    assert run(capsys, "keys", "revoke", "only", "--file", str(path))[0] == 0
    assert Principals.load(path).by_hash == {}
    code, out, _ = run(capsys, "keys", "list", "--file", str(path))
    assert code == 0
    assert "no principals" in out


def test_the_file_comes_from_traffic_hub_auth_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "auth.toml"
    monkeypatch.setenv("TRAFFIC_HUB_AUTH_FILE", str(path))
    code, out, _ = run(capsys, "keys", "add", "ops", "--role", "operator")
    assert code == 0
    assert Principals.load(path).authenticate(out.split()[-1]) is not None
    monkeypatch.delenv("TRAFFIC_HUB_AUTH_FILE")
    monkeypatch.chdir(tmp_path)  # no .env here
    code, _, err = run(capsys, "keys", "list")
    assert code == 1
    assert "--file" in err
    assert "TRAFFIC_HUB_AUTH_FILE" in err


def test_a_broken_file_is_not_touched(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "principals.toml"
    path.write_text("[[principals]]\nname = 'half", encoding="utf-8")
    code, _, err = run(capsys, "keys", "add", "x", "--role", "admin", "--file", str(path))
    assert code == 1
    assert "fix the file by hand" in err
    assert path.read_text(encoding="utf-8") == "[[principals]]\nname = 'half"


def test_demo_keys_are_stable_across_restarts(tmp_path: Path) -> None:
    communes = {"59350", "59512", "59009"}
    path, first = demo_keys(tmp_path / "run", communes)
    again_path, again = demo_keys(tmp_path / "run", communes)
    assert path == again_path
    assert [k.key for k in first] == [k.key for k in again]
    principals = Principals.load(path)
    assert all(principals.authenticate(k.key) == k.principal for k in first)
    assert (tmp_path / "run" / "demo-keys.toml").stat().st_mode & 0o777 == 0o600
    assert first[0].key not in path.read_text(encoding="utf-8")  # the auth file holds hashes only


def test_demo_keeps_principals_added_to_its_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path, first = demo_keys(tmp_path, {"59350", "59512"})
    key = add(capsys, path, "partner-test", "--role", "partner")
    _, again = demo_keys(tmp_path, {"59350", "59512"})
    assert [k.key for k in again] == [k.key for k in first]
    assert Principals.load(path).authenticate(key) is not None
    (tmp_path / "demo-keys.toml").unlink()  # the documented way to get new demo keys
    _, fresh = demo_keys(tmp_path, {"59350", "59512"})
    assert not {k.key for k in fresh} & {k.key for k in first}
    assert Principals.load(path).authenticate(first[0].key) is None
    assert Principals.load(path).authenticate(key) is not None
    assert tomllib.loads((tmp_path / "demo-keys.toml").read_text(encoding="utf-8"))["keys"][0]["key"] == fresh[0].key


async def _until(predicate: Callable[[], bool]) -> None:
    """Polls a condition the watcher makes true (it has no event to wait on); fails after 5 s."""
    async with asyncio.timeout(5):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_watcher_follows_the_file_and_keeps_the_last_good_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "principals.toml"
    path.write_text(principals_toml(), encoding="utf-8")
    seen: list[Principals] = []
    watcher = PrincipalsWatcher(path, seen.append, interval_s=0.02)
    task = asyncio.create_task(watcher.run())
    try:
        await _until(lambda: len(seen) == 1)
        path.write_text("[[principals]]\nname = 'broken", encoding="utf-8")
        with caplog.at_level(logging.ERROR, logger="traffic_hub.keys"):
            await _until(lambda: any("keeping the previous principals" in r.message for r in caplog.records))
        assert len(seen) == 1  # the broken file was not applied
        path.write_text(principals_toml().split("\n\n")[0] + "\n", encoding="utf-8")
        await _until(lambda: len(seen) == 2)
        assert [p.name for p in seen[-1].by_hash.values()] == ["voirie-lille"]
        assert watcher.reloads == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_symlinked_file_is_edited_at_its_target(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    target = tmp_path / "conf" / "principals.toml"
    target.write_text(principals_toml(), encoding="utf-8")
    link = tmp_path / "principals.toml"
    link.symlink_to(target)
    key = add(capsys, link, "new-partner", "--role", "partner")
    assert link.is_symlink()
    assert Principals.load(target).authenticate(key) is not None


def test_make_run_demo_uses_the_run_dir_file_and_the_same_keys_after_a_restart(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, demo=True, run_dir=tmp_path / ".run")
    first_settings, first, first_keys = _principals(settings)
    again_settings, again, again_keys = _principals(settings)  # the next `make run`
    assert first_settings.auth_file == again_settings.auth_file == tmp_path / ".run" / "principals.toml"
    assert [k.key for k in first_keys] == [k.key for k in again_keys]
    assert first.by_hash == again.by_hash


def test_demo_without_a_writable_run_dir_still_starts_with_keys_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    settings, principals, keys = _principals(Settings(_env_file=None, demo=True, run_dir=blocker / ".run"))
    assert settings.auth_file is None
    assert all(principals.authenticate(k.key) == k.principal for k in keys)
    assert "not kept across restarts" in caplog.text
