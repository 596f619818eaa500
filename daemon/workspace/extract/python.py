"""Python: classes, functions, methods (decorators in the signature: `@property` changes how a
name is used), module constants and variables, class attributes (class-level and `self.x` in
`__init__`), imports. Module-level `if`/`try`/`with` blocks are looked into (TYPE_CHECKING
imports, optional dependencies); function bodies are not."""

from __future__ import annotations

from tree_sitter import Node

from nearcode.daemon.workspace.extract.common import (
    Collector,
    constant_like,
    doc_line,
    one_line,
    text,
)
from nearcode.daemon.workspace.model import DefinitionKind

_BLOCK_HOLDERS = frozenset({"if_statement", "try_statement", "with_statement", "elif_clause", "else_clause",
                            "except_clause", "finally_clause"})  # fmt: skip
_INIT_METHODS = frozenset({"__init__", "__post_init__", "setUp"})


def extract(out: Collector, root: Node) -> None:
    _block(out, root, scope="")


def _block(out: Collector, block: Node, scope: str) -> None:
    for child in block.named_children:
        if out.full:
            return
        kind = child.type
        if kind == "decorated_definition":
            definition = child.child_by_field_name("definition")
            if definition is not None:
                _definition(out, definition, child, scope)
        elif kind in ("function_definition", "class_definition"):
            _definition(out, child, None, scope)
        elif kind == "expression_statement":
            _assignments(out, child, scope)
        elif kind in ("import_statement", "import_from_statement") and not scope:
            _import(out, child)
        elif kind in _BLOCK_HOLDERS:
            _holder(out, child, scope)


def _holder(out: Collector, node: Node, scope: str) -> None:
    """The blocks of an `if`/`try`/`with` statement and of its `elif`/`else`/`except` clauses."""
    for part in node.named_children:
        if part.type == "block":
            _block(out, part, scope)
        elif part.type in _BLOCK_HOLDERS:
            _holder(out, part, scope)


def _definition(out: Collector, node: Node, decorated: Node | None, scope: str) -> None:
    name = text(node.child_by_field_name("name"))
    body = node.child_by_field_name("body")
    decorators = [one_line(text(d), 120) for d in decorated.named_children if d.type == "decorator"] if decorated else []
    signature = "\n".join([*decorators, out.header(node, body)])
    doc = _docstring(body)
    if node.type == "class_definition":
        out.add(name, "class", node, signature, doc, scope)
        if body is not None:
            _block(out, body, f"{scope}.{name}" if scope else name)
        return
    out.add(name, "method" if scope else "function", node, signature, doc, scope)
    if scope and name in _INIT_METHODS and body is not None:
        _self_attributes(out, body, scope)


def _docstring(body: Node | None) -> str:
    first = body.named_children[0] if body is not None and body.named_children else None
    if first is None or first.type != "expression_statement" or not first.named_children:
        return ""
    string = first.named_children[0]
    if string.type != "string":
        return ""
    content = "".join(text(c) for c in string.named_children if c.type == "string_content")
    return doc_line(content)


def _targets(left: Node) -> list[Node]:
    if left.type == "identifier":
        return [left]
    if left.type in ("pattern_list", "tuple_pattern"):
        return [c for c in left.named_children if c.type == "identifier"]
    return []


def _assignments(out: Collector, statement: Node, scope: str) -> None:
    for assignment in statement.named_children:
        if assignment.type != "assignment":
            continue
        right = assignment.child_by_field_name("right")
        signature = out.assignment(assignment, right)
        left = assignment.child_by_field_name("left")
        for target in _targets(left) if left is not None else []:
            name = text(target)
            kind: DefinitionKind = "attribute" if scope else ("constant" if constant_like(name) else "variable")
            out.add(name, kind, assignment, signature, "", scope)


def _self_attributes(out: Collector, body: Node, scope: str) -> None:
    """`self.x = ...` at the top level of `__init__`: the instance attributes callers use."""
    known = {name for name, qualified, *_ in out.definitions if qualified.rsplit(".", 1)[0] == scope}
    for statement in body.named_children:
        if statement.type != "expression_statement":
            continue
        for assignment in statement.named_children:
            left = assignment.child_by_field_name("left") if assignment.type == "assignment" else None
            if left is None or left.type != "attribute" or text(left.child_by_field_name("object")) != "self":
                continue
            name = text(left.child_by_field_name("attribute"))
            if name and name not in known:
                known.add(name)
                out.add(name, "attribute", assignment, out.assignment(assignment, assignment.child_by_field_name("right")), "", scope)


def _dotted(node: Node | None) -> str:
    return text(node).replace(" ", "") if node is not None else ""


def _import(out: Collector, node: Node) -> None:
    if node.type == "import_statement":
        for item in node.children_by_field_name("name"):
            if item.type == "aliased_import":
                out.add_import(_dotted(item.child_by_field_name("name")), (), text(item.child_by_field_name("alias")), 0, node)
            else:
                out.add_import(_dotted(item), (), "", 0, node)
        return
    module_node = node.child_by_field_name("module_name")
    level, module = 0, _dotted(module_node)
    if module_node is not None and module_node.type == "relative_import":
        prefix = next((c for c in module_node.children if c.type == "import_prefix"), None)
        level = text(prefix).count(".")
        module = _dotted(next((c for c in module_node.named_children if c.type == "dotted_name"), None))
    names: list[str] = []
    aliases: list[str] = []
    for item in node.children_by_field_name("name"):
        if item.type == "aliased_import":
            names.append(_dotted(item.child_by_field_name("name")))
            aliases.append(text(item.child_by_field_name("alias")))
        else:
            names.append(_dotted(item))
    if any(c.type == "wildcard_import" for c in node.named_children):
        names.append("*")
    alias = aliases[0] if len(names) == 1 and aliases else ""
    out.add_import(module, names, alias, level, node)
