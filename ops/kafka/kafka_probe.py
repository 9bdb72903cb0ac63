"""Kafka wire-protocol probes for the ops scripts (stdlib only: they run before `make install`).

A port that accepts connections is not a broker that serves: these probes send real requests.

    python3 kafka_probe.py apiversions PORT   exit 0 iff 127.0.0.1:PORT answers ApiVersions v0 with error 0
    python3 kafka_probe.py brokers PORT       print the ids of the brokers a Metadata v1 request sees
                                              (only registered, unfenced brokers are listed); exit 2 if no answer
    python3 kafka_probe.py controller FILE…   print the active controller's node id, read from the KRaft
                                              quorum-state files (the newest leader epoch wins); exit 1 if none
"""

from __future__ import annotations

import json
import socket
import struct
import sys
from pathlib import Path

CLIENT_ID = b"kafka-local"
CORRELATION = 7


def request(port: int, api_key: int, version: int, body: bytes) -> bytes:
    """Send one request to 127.0.0.1:port; return the response after its correlation id."""
    header = struct.pack(">hhih", api_key, version, CORRELATION, len(CLIENT_ID)) + CLIENT_ID
    payload = header + body
    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.settimeout(3)
        s.sendall(struct.pack(">i", len(payload)) + payload)
        (size,) = struct.unpack(">i", read_exactly(s, 4))
        answer = read_exactly(s, size)
    (correlation,) = struct.unpack(">i", answer[:4])
    if correlation != CORRELATION:
        raise OSError(f"correlation id {correlation}")
    return answer[4:]


def read_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


def api_versions_ok(port: int) -> bool:
    (error_code,) = struct.unpack(">h", request(port, 18, 0, b"")[:2])
    return bool(error_code == 0)


def broker_ids(port: int) -> list[int]:
    """Metadata v1 for no topic: the broker list only."""
    answer = request(port, 3, 1, struct.pack(">i", 0))
    (count,) = struct.unpack_from(">i", answer, 0)
    offset, ids = 4, []
    for _ in range(count):
        node_id, host_len = struct.unpack_from(">ih", answer, offset)
        offset += 6 + host_len + 4  # node id, host, port
        (rack_len,) = struct.unpack_from(">h", answer, offset)
        offset += 2 + max(rack_len, 0)
        ids.append(node_id)
    return sorted(ids)


def active_controller(files: list[str]) -> int | None:
    best: tuple[int, int] | None = None
    for name in files:
        try:
            state = json.loads(Path(name).read_text())
        except (OSError, ValueError):
            continue
        leader, epoch = int(state.get("leaderId", -1)), int(state.get("leaderEpoch", -1))
        if leader >= 0 and (best is None or epoch > best[0]):
            best = (epoch, leader)
    return None if best is None else best[1]


def main(argv: list[str]) -> int:
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    try:
        if command == "apiversions":
            return 0 if api_versions_ok(int(args[0])) else 1
        if command == "brokers":
            print(" ".join(str(i) for i in broker_ids(int(args[0]))))
            return 0
    except (OSError, struct.error):
        return 2
    if command == "controller":
        leader = active_controller(args)
        if leader is None:
            return 1
        print(leader)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
