"""A replicated counter embedded in an asyncio app: run three copies, one per member.

    python examples/replicated_counter.py 1 & python examples/replicated_counter.py 2 &
    python examples/replicated_counter.py 3

Each increments the counter 100 times (from whichever member it runs on), then reads it
linearizably. Kill one and start it again: it recovers from ./counter-N and catches up.
"""

import asyncio
import sys

from raftkv.node import start_replica


class Counter:
    value = 0

    def apply(self, entries):
        results = []
        for e in entries:
            if e.data:  # empty entries are the leader's no-ops
                self.value += int(e.data)
            results.append(self.value)
        return results

    def snapshot(self):
        return str(self.value).encode()

    def restore(self, data):
        self.value = int(data or b"0")


async def main(me: int, n: int = 100, base_port: int = 7000) -> None:
    peers = {i: ("127.0.0.1", base_port + i) for i in (1, 2, 3)}
    counter = Counter()
    node = await start_replica(me, peers, counter, data_dir=f"counter-{me}")
    while node.leader() == 0:  # wait for an election
        await asyncio.sleep(0.05)
    for _ in range(n):
        await node.propose(b"1")  # returns once applied here
    await node.read_index()  # a linearizable read point
    while counter.value < 3 * n:  # until every member's increments are applied here
        await asyncio.sleep(0.05)
    print(f"member {me}: counter = {counter.value}", flush=True)
    await asyncio.sleep(1)  # let the others see their last increments before leaving
    await node.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), *map(int, sys.argv[2:])))
