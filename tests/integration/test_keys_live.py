"""A key made with `traffic-hub keys add` works on a running hub within seconds; a revoked one gets 401.

No restart: the hub follows its principals file (traffic_hub/keys.py). A broken edit of the file
keeps the keys that worked.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.hubs import KEYS, auth, running_hub, settings_for, wait_until, write_principals
from traffic_hub.cli import main

pytestmark = pytest.mark.kafka


def test_keys_added_and_revoked_while_the_hub_runs(
    kafka_bootstrap: str, topic_prefix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_principals(tmp_path)
    with running_hub(settings_for(kafka_bootstrap, topic_prefix, path)) as client:
        assert main(["keys", "add", "waze-live", "--role", "partner", "--file", str(path)]) == 0
        key = capsys.readouterr().out.split()[-1]

        def whoami() -> int:
            return client.get("/api/v1/whoami", headers=auth(key)).status_code

        wait_until(lambda: whoami() == 200, timeout=15, interval=0.1)
        assert client.get("/api/v1/whoami", headers=auth(key)).json()["name"] == "waze-live"
        assert client.get("/feeds/waze/cifs.xml", params={"key": key}).status_code == 200

        path.write_text(path.read_text(encoding="utf-8") + "\n[[principals]]\nname = 'oops", encoding="utf-8")
        assert main(["keys", "add", "other", "--role", "partner", "--file", str(path)]) == 1  # refused, file as is
        assert whoami() == 200
        assert client.get("/api/v1/whoami", headers=auth(KEYS.admin)).status_code == 200
        fixed = path.read_text(encoding="utf-8").rsplit("\n[[principals]]\nname = 'oops", 1)[0]
        path.write_text(fixed, encoding="utf-8")

        assert main(["keys", "revoke", "waze-live", "--file", str(path)]) == 0
        wait_until(lambda: whoami() == 401, timeout=15, interval=0.1)
        assert client.get("/feeds/waze/cifs.xml", params={"key": key}).status_code == 401
        assert client.get("/api/v1/whoami", headers=auth(KEYS.partner)).status_code == 200  # the others still work
