"""Trees of departments and of regions, given as a map of each node to its parent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crm_common.errors import ValidationFailed

DEPARTMENT_PATH_SEPARATOR = " › "
REGION_PATH_SEPARATOR = "/"


class Tree:
    """A forest: ``parents`` maps every node id to its parent id (``None`` for a root)."""

    def __init__(self, parents: Mapping[str, str | None]) -> None:
        self.parents = dict(parents)
        self.children: dict[str, list[str]] = {}
        for node, parent in self.parents.items():
            if parent is not None:
                self.children.setdefault(parent, []).append(node)
        for siblings in self.children.values():
            siblings.sort()

    def __contains__(self, node: object) -> bool:
        return node in self.parents

    def ancestors(self, node: str) -> list[str]:
        """The node's parent, grandparent, … up to its root (nearest first)."""
        found: list[str] = []
        seen = {node}
        parent = self.parents.get(node)
        while parent is not None and parent not in seen:
            found.append(parent)
            seen.add(parent)
            parent = self.parents.get(parent)
        return found

    def subtree(self, node: str) -> list[str]:
        """The node and everything below it, parents before children."""
        order = [node]
        seen = {node}
        index = 0
        while index < len(order):
            for child in self.children.get(order[index], ()):
                if child not in seen:
                    seen.add(child)
                    order.append(child)
            index += 1
        return order

    def descendants(self, node: str) -> list[str]:
        return self.subtree(node)[1:]

    def would_cycle(self, node: str, new_parent: str | None) -> bool:
        """Whether putting ``node`` under ``new_parent`` makes it its own ancestor."""
        if new_parent is None:
            return False
        return new_parent == node or new_parent in set(self.descendants(node))

    def paths(
        self, names: Mapping[str, str], separator: str, nodes: Iterable[str] | None = None
    ) -> dict[str, str]:
        """Each node's path: the names from its root down to it, joined by ``separator``."""
        wanted = self.parents if nodes is None else nodes
        return {
            node: separator.join(names[n] for n in [*reversed(self.ancestors(node)), node])
            for node in wanted
        }


def child_path(parent_path: str | None, name: str, separator: str) -> str:
    """The path of a node named ``name`` under a parent with ``parent_path`` (or a root)."""
    return f"{parent_path}{separator}{name}" if parent_path else name


def check_region_name(name: str) -> None:
    """A region name is one level of a path, so it cannot hold the separator."""
    if REGION_PATH_SEPARATOR in name:
        raise ValueError(f"a region name cannot contain {REGION_PATH_SEPARATOR!r}")


def check_move(tree: Tree, node: str, new_parent: str | None, what: str, below: str) -> None:
    """Refuse to put ``node`` (a ``what``) under itself or one of its ``below``."""
    if tree.would_cycle(node, new_parent):
        raise ValidationFailed.on(
            "parent_id", f"a {what} cannot move under itself or one of its {below}"
        )
