"""`make install` on a bare machine: missing system packages are installed, or named with the command to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "ops" / "system-packages.sh"


def fake_path(tmp_path: Path, present: list[str], uid: int) -> str:
    """A PATH holding only `present` (stubs), the shell tools the script runs, python3 and an `id` answering `uid`.

    PostgreSQL is looked for on disk (`/usr/lib/postgresql`), as `make install` leaves it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in present:
        (bin_dir / name).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / name).chmod(0o755)
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "id").chmod(0o755)
    for tool in ("bash", "find", "sort", "tail"):  # what the script itself runs
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    (bin_dir / "python3").symlink_to(Path(sys.base_prefix) / "bin" / "python3")  # not the venv's: it checks venv
    return str(bin_dir)


def run(path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path}
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, check=False, timeout=60)


def test_nothing_to_do_when_everything_is_there(tmp_path: Path) -> None:
    result = run(fake_path(tmp_path, ["java", "mvn", "chromium", "node", "npm", "nginx", "wrk"], uid=1000))
    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""


def test_without_root_it_stops_at_once_with_the_exact_command(tmp_path: Path) -> None:
    result = run(fake_path(tmp_path, ["java", "mvn", "node", "npm", "wrk"], uid=1000))
    assert result.returncode == 1
    assert "sudo apt-get install -y --no-install-recommends chromium nginx-light" in result.stderr
