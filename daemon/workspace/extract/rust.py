"""Rust: functions, methods of `impl` and `trait` blocks (qualified by the type or trait), structs
with their fields, enums with their variants, traits, type aliases, consts and statics, macros,
items of inline modules; `use` trees flattened into one import per path, and `mod x;`."""

from __future__ import annotations

from tree_sitter import Node

from nearcode.daemon.workspace.extract.common import Collector, leading_doc, one_line, text

_DOC = ("///", "/**")
_ATTRIBUTES = frozenset({"attribute_item"})
_TYPES = frozenset({"struct_item", "enum_item", "union_item", "trait_item"})


def extract(out: Collector, root: Node) -> None:
    _items(out, root, "")


def _doc(node: Node) -> str:
    return leading_doc(node, _DOC, _ATTRIBUTES)


def _items(out: Collector, container: Node, owner: str) -> None:
    for node in container.named_children:
        if out.full:
            return
        kind = node.type
        if kind in ("function_item", "function_signature_item"):
            signature = out.header(node, node.child_by_field_name("body")).rstrip(";")
            out.add(text(node.child_by_field_name("name")), "method" if owner else "function", node, signature,
                    _doc(node), owner)
        elif kind in _TYPES:
            _type(out, node)
        elif kind == "impl_item":
            body = node.child_by_field_name("body")
            if body is not None:
                _items(out, body, _type_name(node.child_by_field_name("type")))
        elif kind == "type_item":
            out.add(text(node.child_by_field_name("name")), "class", node, out.header(node, None).rstrip(";"),
                    _doc(node), owner)
        elif kind in ("const_item", "static_item"):
            signature = out.assignment(node, node.child_by_field_name("value")).rstrip(";")
            out.add(text(node.child_by_field_name("name")), "constant", node, signature, _doc(node), owner)
        elif kind == "macro_definition":
            name = text(node.child_by_field_name("name"))
            out.add(name, "function", node, f"macro_rules! {name}", _doc(node))
        elif kind == "mod_item":
            body = node.child_by_field_name("body")
            if body is None:
                out.add_import("self::" + text(node.child_by_field_name("name")), (), "", 0, node)
            elif not owner:
                _items(out, body, "")
        elif kind == "use_declaration" and not owner:
            _use(out, node)


def _type_name(node: Node | None) -> str:
    """`Point<T>` -> `Point`, `crate::a::Point` -> `Point`."""
    while node is not None and node.type in ("generic_type", "scoped_type_identifier"):
        node = node.child_by_field_name("type") if node.type == "generic_type" else node.child_by_field_name("name")
    return text(node)


def _type(out: Collector, node: Node) -> None:
    name = text(node.child_by_field_name("name"))
    body = node.child_by_field_name("body")
    out.add(name, "class", node, out.header(node, body), _doc(node))
    if body is None:
        return
    if node.type == "trait_item":
        _items(out, body, name)
        return
    for member in body.named_children:
        if member.type in ("field_declaration", "enum_variant"):
            out.add(text(member.child_by_field_name("name")), "attribute", member, one_line(text(member), 160),
                    _doc(member), name)


def _segments(node: Node | None) -> list[str]:
    if node is None:
        return []
    if node.type == "scoped_identifier":
        return [*_segments(node.child_by_field_name("path")), text(node.child_by_field_name("name"))]
    return [text(node)]


def _flatten(node: Node, prefix: list[str], found: list[tuple[list[str], str, str]]) -> None:
    """(module segments, name, alias) for every leaf of a use tree."""
    kind = node.type
    if kind == "scoped_identifier":
        segments = _segments(node)
        found.append((prefix + segments[:-1], segments[-1], ""))
    elif kind == "use_as_clause":
        segments = _segments(node.child_by_field_name("path"))
        found.append((prefix + segments[:-1], segments[-1], text(node.child_by_field_name("alias"))))
    elif kind == "use_wildcard":
        path = next((c for c in node.named_children), None)
        found.append((prefix + _segments(path), "*", ""))
    elif kind == "scoped_use_list":
        inner = prefix + _segments(node.child_by_field_name("path"))
        items = node.child_by_field_name("list")
        for item in items.named_children if items is not None else []:
            _flatten(item, inner, found)
    elif kind == "use_list":
        for item in node.named_children:
            _flatten(item, prefix, found)
    elif kind in ("identifier", "self", "super", "crate"):
        found.append((prefix, text(node), ""))


def _use(out: Collector, node: Node) -> None:
    argument = node.child_by_field_name("argument")
    if argument is None:
        return
    found: list[tuple[list[str], str, str]] = []
    _flatten(argument, [], found)
    groups: dict[str, tuple[list[str], list[str]]] = {}
    for segments, name, alias in found:
        names, aliases = groups.setdefault("::".join(segments), ([], []))
        names.append(name)
        aliases.append(alias)
    for module, (names, aliases) in groups.items():
        out.add_import(module, names, aliases[0] if len(names) == 1 else "", 0, node)
