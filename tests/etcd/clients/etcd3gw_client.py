"""Run by the etcd3gw client's own venv (not by pytest): argv = host port. Uses etcd's JSON
gateway. Exits 0 when every check passed."""

import sys
import threading
import time

from etcd3gw.client import Etcd3Client


def main(host: str, port: int) -> None:
    c = Etcd3Client(host=host, port=port, timeout=10)
    assert c.api_path == "/v3/", c.api_path  # found through GET /version
    assert c.put("gw/a", "1") is True
    c.put("gw/b", "2")
    assert c.get("gw/a") == [b"1"], c.get("gw/a")
    assert [v for v, _ in c.get_prefix("gw/", sort_order="ascend")] == [b"1", b"2"]
    assert c.get("gw/none") == []
    # txns through the gateway: create-if-absent and compare-and-swap
    assert c.create("gw/c", "new") is True
    assert c.create("gw/c", "again") is False
    assert c.replace("gw/a", "1", "one") is True
    assert c.replace("gw/a", "1", "uno") is False
    assert c.get("gw/a") == [b"one"]
    # watch: a streamed POST /v3/watch
    events, cancel = c.watch("gw/w")
    got: list[dict] = []
    t = threading.Thread(target=lambda: got.append(next(events)), daemon=True)
    t.start()
    time.sleep(0.5)
    c.put("gw/w", "x")
    t.join(10)
    cancel()
    assert got and got[0]["kv"]["key"] == b"gw/w" and got[0]["kv"]["value"] == b"x", got
    # leases
    lease = c.lease(60)
    assert c.put("gw/l", "v", lease=lease)
    assert 55 <= lease.ttl() <= 60, lease.ttl()
    assert lease.keys() == [b"gw/l"], lease.keys()
    assert lease.refresh() == 60
    assert lease.revoke() is True
    assert c.get("gw/l") == []
    assert c.delete("gw/a") is True
    assert c.delete("gw/a") is False
    assert c.delete_prefix("gw/") is True
    assert c.get_prefix("gw/") == []
    assert c.status()["version"] == "3.4.23"
    assert len(c.members()) == 3
    print("etcd3gw: ok")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
