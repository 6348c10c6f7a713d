"""The fork tree of a trajectory, from the manifest's lineage columns.

Every fork row (and every other leaf of a thread branched in place, ``runs.branches``)
names its ``parent_thread_id`` and the ``fork_checkpoint_id``
it branched from, so the whole family is a tree rooted at the first
ancestor that has no parent. Bounded, so a corrupted (cyclic) lineage
cannot hang the viewer.
"""

from __future__ import annotations

from typing import Any

MAX_TREE_NODES = 500
TREE_FIELDS = ("thread_id", "parent_thread_id", "fork_checkpoint_id", "status", "stop_reason", "mode", "created_at")


def ancestors(rows: dict[str, dict[str, Any]], thread_id: str) -> list[dict[str, Any]]:
    """Parent, grandparent, ... up to the root; oldest first."""
    chain: list[dict[str, Any]] = []
    seen = {thread_id}
    parent = rows[thread_id].get("parent_thread_id") if thread_id in rows else None
    while parent and parent in rows and parent not in seen:
        seen.add(parent)
        chain.append(_node(rows[parent]))
        parent = rows[parent].get("parent_thread_id")
    return list(reversed(chain))


def _node(row: dict[str, Any]) -> dict[str, Any]:
    return {key: row.get(key) for key in TREE_FIELDS}


def children_index(rows: dict[str, dict[str, Any]]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {}
    for row in rows.values():
        parent = row.get("parent_thread_id")
        if parent:
            children.setdefault(parent, []).append(row["thread_id"])
    for ids in children.values():
        ids.sort(key=lambda t: (rows[t].get("created_at") or "", t))
    return children


def fork_tree(rows: dict[str, dict[str, Any]], thread_id: str) -> dict[str, Any]:
    """The family tree containing ``thread_id``: nested nodes with ``children``."""
    chain = ancestors(rows, thread_id)
    root = chain[0]["thread_id"] if chain else thread_id
    children = children_index(rows)
    budget = [MAX_TREE_NODES]
    seen: set[str] = set()

    def build(tid: str) -> dict[str, Any]:
        seen.add(tid)
        budget[0] -= 1
        node = _node(rows[tid]) if tid in rows else {"thread_id": tid}
        node["children"] = []
        for child in children.get(tid, []):
            if child in seen or budget[0] <= 0:
                node["truncated"] = True
                continue
            node["children"].append(build(child))
        return node

    return build(root)


def descendants(rows: dict[str, dict[str, Any]], thread_id: str) -> list[str]:
    """Every fork below ``thread_id``, breadth first."""
    children = children_index(rows)
    found: list[str] = []
    queue = list(children.get(thread_id, []))
    seen = {thread_id}
    while queue and len(found) < MAX_TREE_NODES:
        tid = queue.pop(0)
        if tid in seen:
            continue
        seen.add(tid)
        found.append(tid)
        queue.extend(children.get(tid, []))
    return found
