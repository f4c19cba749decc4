"""Small graph algorithms over ``{node: set of nodes it depends on}`` with a stable tie order.

Used for pipeline stages (a stage depends on the stages it reads from); ties always follow the
given ``order`` (declaration order), so results are deterministic.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence


def topological(
    deps: Mapping[str, set[str]], order: Sequence[str], nodes: set[str] | None = None
) -> list[str]:
    """Topological order of ``nodes`` (default: all), dependencies first, ties by ``order``.

    Nodes on a cycle, or downstream of one, are left out (compare lengths to detect that)."""
    rank = {n: i for i, n in enumerate(order)}
    nodes = set(deps) if nodes is None else nodes
    indegree = {n: sum(1 for d in deps[n] if d in nodes) for n in nodes}
    users: dict[str, list[str]] = {n: [] for n in nodes}
    for n in nodes:
        for d in deps[n]:
            if d in nodes:
                users[d].append(n)
    ready = [(rank[n], n) for n in nodes if indegree[n] == 0]
    heapq.heapify(ready)
    out: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        out.append(node)
        for user in users[node]:
            indegree[user] -= 1
            if indegree[user] == 0:
                heapq.heappush(ready, (rank[user], user))
    return out


def find_cycles(deps: Mapping[str, set[str]], order: Sequence[str]) -> list[list[str]]:
    """Cycles of two or more nodes, each as a path in dependency-flow order ``[a, b, a]`` (b depends
    on a), starting at its earliest node. Self loops are ignored. Cycles that share no node are all
    reported; of several cycles through the same nodes one is reported."""
    rank = {n: i for i, n in enumerate(order)}
    graph = {name: {d for d in ds if d != name} for name, ds in deps.items()}
    remaining = set(graph)
    cycles: list[list[str]] = []
    while True:
        remaining -= set(topological(graph, order, remaining))
        if not remaining:
            return cycles
        # Every node left has a dependency among those left, so walking dependencies must loop.
        walk = [min(remaining, key=rank.__getitem__)]
        while True:
            upstream = min((d for d in graph[walk[-1]] if d in remaining), key=rank.__getitem__)
            if upstream in walk:
                loop = walk[walk.index(upstream) :]
                break
            walk.append(upstream)
        loop.reverse()  # walked against the flow
        start = min(range(len(loop)), key=lambda i: rank[loop[i]])
        loop = loop[start:] + loop[:start]
        cycles.append([*loop, loop[0]])
        remaining -= set(loop)
