"""Group ops into module nodes: consecutive ops recorded in the same module
become one group, so a layer is drawn as one box.

Ops are put in a topological order that keeps each module's ops together
where the dependencies allow, then cut into runs of equal module. Collapsing
contiguous runs of a topological order can never create a cycle: every edge
still goes from an earlier group to a later one.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from .graph import Graph


@dataclass
class OpGroup:
    """Ops drawn as one node: a run of ops from `module` (one op when module is None)."""

    key: str
    module: str | None
    ops: list[str]


def module_order(graph: Graph) -> list[str]:
    """Op keys in a topological order that prefers, whenever it can, to continue
    with an op from the module of the op just placed (ties go to the depth-first
    order of the walk, which follows execution order along chains)."""
    rank = {k: i for i, k in enumerate(graph.ops)}
    producers: dict[str, set[str]] = {}
    readers: dict[str, list[str]] = {k: [] for k in graph.ops}
    for op in graph.ops.values():
        deps = {graph.tensors[t].producer for t in op.inputs} - {None}
        producers[op.key] = deps  # type: ignore[assignment]
        for d in deps:
            readers[d].append(op.key)  # type: ignore[index]
    waiting = {k: len(v) for k, v in producers.items()}
    ready: list[tuple[int, str]] = []
    ready_in: dict[str | None, list[tuple[int, str]]] = {}
    placed: set[str] = set()

    def push(key: str) -> None:
        heapq.heappush(ready, (rank[key], key))
        heapq.heappush(ready_in.setdefault(graph.ops[key].module, []), (rank[key], key))

    def pop(heap: list[tuple[int, str]]) -> str | None:
        while heap:
            _, key = heapq.heappop(heap)
            if key not in placed:
                return key
        return None

    for k, n in waiting.items():
        if n == 0:
            push(k)
    order: list[str] = []
    module: str | None = None
    while len(order) < len(graph.ops):
        key = pop(ready_in.get(module, [])) if module is not None else None
        if key is None:  # switching: place ops outside modules first, they may unblock a whole module
            key = pop(ready_in.get(None, [])) or pop(ready)
        if key is None:
            raise RuntimeError("viz: the recorded graph has a cycle")
        placed.add(key)
        order.append(key)
        module = graph.ops[key].module
        for r in readers[key]:
            waiting[r] -= 1
            if waiting[r] == 0:
                push(r)
    return order


def group_by_module(graph: Graph) -> list[OpGroup]:
    """Runs of consecutive ops from the same module, in topological order;
    ops outside any module stay alone."""
    groups: list[OpGroup] = []
    for key in module_order(graph):
        module = graph.ops[key].module
        if module is not None and groups and groups[-1].module == module:
            groups[-1].ops.append(key)
        else:
            groups.append(OpGroup(f"g{len(groups)}", module, [key]))
    return groups
