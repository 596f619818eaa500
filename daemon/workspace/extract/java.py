"""Java: classes, interfaces, enums, records (nested ones qualified `Outer.Inner`), methods and
constructors, fields (`static final` UPPER_CASE ones as constants), enum constants, record
components; the package and imports (static ones too). Annotations are left out of signatures."""

from __future__ import annotations

from tree_sitter import Node

from nearcode.daemon.workspace.extract.common import (
    Collector,
    constant_like,
    leading_doc,
    one_line,
    text,
)

_DOC = ("/**",)
_TYPES = frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
                    "annotation_type_declaration"})  # fmt: skip
_ANNOTATIONS = frozenset({"marker_annotation", "annotation"})


def extract(out: Collector, root: Node) -> None:
    for node in root.named_children:
        if out.full:
            return
        if node.type == "package_declaration":
            out.package = text(next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None))
        elif node.type == "import_declaration":
            _import(out, node)
        elif node.type in _TYPES:
            _type(out, node, "")


def _signature_start(node: Node) -> Node | None:
    """The first token after the annotations (`@Override public int f()` -> `public`)."""
    for child in node.children:
        if child.type == "modifiers":
            rest = [c for c in child.children if c.type not in _ANNOTATIONS]
            if rest:
                return rest[0]
            continue
        return child
    return None


def _type(out: Collector, node: Node, owner: str) -> None:
    name = text(node.child_by_field_name("name"))
    qualified = f"{owner}.{name}" if owner else name
    body = node.child_by_field_name("body")
    start = _signature_start(node)
    out.add(name, "class", start or node, out.header(node, body, start), leading_doc(node, _DOC), owner)
    if node.type == "record_declaration":
        parameters = node.child_by_field_name("parameters")
        for component in parameters.named_children if parameters is not None else []:
            if component.type == "formal_parameter":
                out.add(text(component.child_by_field_name("name")), "attribute", component, one_line(text(component)),
                        "", qualified)
    for member in body.named_children if body is not None else []:
        if out.full:
            return
        _member(out, member, qualified, name)


def _member(out: Collector, member: Node, qualified: str, class_name: str) -> None:
    kind = member.type
    if kind in _TYPES:
        _type(out, member, qualified)
    elif kind in ("method_declaration", "constructor_declaration", "annotation_type_element_declaration"):
        start = _signature_start(member)
        signature = out.header(member, member.child_by_field_name("body"), start).rstrip(";")
        out.add(text(member.child_by_field_name("name")), "method", start or member, signature, leading_doc(member, _DOC),
                qualified)
    elif kind in ("field_declaration", "constant_declaration"):
        modifiers = next((c for c in member.children if c.type == "modifiers"), None)
        words = set(text(modifiers).split()) if modifiers is not None else set()
        constant = kind == "constant_declaration" or {"static", "final"} <= words
        start = _signature_start(member)
        signature = out.header(member, None, start).rstrip(";")
        doc = leading_doc(member, _DOC)
        for declarator in member.children_by_field_name("declarator"):
            name = text(declarator.child_by_field_name("name"))
            out.add(name, "constant" if constant and constant_like(name) else "attribute", start or member, signature, doc,
                    qualified)
    elif kind == "enum_body_declarations":  # the members after an enum's constants
        for inner in member.named_children:
            _member(out, inner, qualified, class_name)
    elif kind == "enum_constant":
        out.add(text(member.child_by_field_name("name")), "attribute", member, one_line(text(member), 120),
                leading_doc(member, _DOC), qualified)


def _import(out: Collector, node: Node) -> None:
    path = next((c for c in node.named_children if c.type in ("scoped_identifier", "identifier")), None)
    full = text(path)
    if any(c.type == "asterisk" for c in node.named_children):
        out.add_import(full, ("*",), "", 0, node)
        return
    module, _, name = full.rpartition(".")
    out.add_import(module, (name,), "", 0, node)
