"""The experiment trees of a project, drawn with rich.

Usage:
    flywheel tree look-at
    flywheel tree look-at --json
    flywheel experiment tree look-at            # the same
"""

from __future__ import annotations

from rich.text import Text
from rich.tree import Tree

from flywheel.cli_output import JsonOpt, ProjectArg, emit, show
from flywheel.platform import access
from flywheel.platform.commands._identity import user_session
from flywheel.platform.experiments import tree as experiment_tree
from flywheel.platform.schemas import TreeNode


def tree(project: ProjectArg, as_json: JsonOpt = False) -> None:
    """Draw the experiment trees of a project: forks, iteration and asset counts."""
    with user_session() as (session, user):
        found = access.project(session, user, project)
        name, ident = found.name, found.id
        nodes = experiment_tree(session, user, project)
    emit(
        {"project": {"id": ident, "name": name}, "roots": nodes},
        as_json,
        lambda: show(render_tree(name, ident, nodes)),
    )


def render_tree(project_name: str, project_id: str, roots: list[TreeNode]) -> Tree:
    """A rich Tree: the project at the top, one branch per root experiment, forks marked ⑂.

    Example:
        >>> render_tree("look-at", "prj_1", []).label.plain
        'look-at  prj_1'
    """
    names = {node.id: node.name for node in _walk(roots)}
    top = Tree(Text.assemble((project_name, "bold"), "  ", (project_id, "dim")))
    if not roots:
        top.add(Text("no experiments yet: flywheel experiment create " + project_name + " <name>", style="dim"))
    for root in roots:
        _add(top, root, names)
    return top


def node_label(node: TreeNode, names: dict[str, str]) -> Text:
    """One experiment's line: name, id, counts and, for a fork, where it came from."""
    label = Text.assemble((node.name, "bold cyan"), "  ", (node.id, "dim"))
    label.append(f"  {_count(node.iterations, 'iteration')}, {_count(node.assets, 'asset')}")
    if node.forked_from_id is not None:
        source = names.get(node.forked_from_id, node.forked_from_id)
        point = f" @ #{node.forked_from_iteration_index}" if node.forked_from_iteration_index is not None else ""
        label.append(f"  ⑂ forked from {source}{point}", style="magenta")
    return label


def _add(parent: Tree, node: TreeNode, names: dict[str, str]) -> None:
    branch = parent.add(node_label(node, names))
    for child in node.children:
        _add(branch, child, names)


def _walk(nodes: list[TreeNode]) -> list[TreeNode]:
    found: list[TreeNode] = []
    for node in nodes:
        found.append(node)
        found.extend(_walk(node.children))
    return found


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
