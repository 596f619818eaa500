"""Go: functions, methods (qualified by their receiver type), types with struct fields and
interface methods, constants and variables, the package name and imports."""

from __future__ import annotations

from tree_sitter import Node

from nearcode.daemon.workspace.extract.common import Collector, leading_doc, one_line, text

_DOC = ("//",)


def extract(out: Collector, root: Node) -> None:
    for node in root.named_children:
        if out.full:
            return
        kind = node.type
        if kind == "package_clause":
            out.package = text(next((c for c in node.named_children if c.type == "package_identifier"), None))
        elif kind == "import_declaration":
            _imports(out, node)
        elif kind == "function_declaration":
            signature = out.header(node, node.child_by_field_name("body"))
            out.add(text(node.child_by_field_name("name")), "function", node, signature, leading_doc(node, _DOC))
        elif kind == "method_declaration":
            signature = out.header(node, node.child_by_field_name("body"))
            out.add(text(node.child_by_field_name("name")), "method", node, signature, leading_doc(node, _DOC),
                    _receiver_type(node))
        elif kind == "type_declaration":
            for spec in node.named_children:
                if spec.type in ("type_spec", "type_alias"):
                    _type(out, spec, node)
        elif kind in ("const_declaration", "var_declaration"):
            for spec in node.named_children:
                if spec.type in ("const_spec", "var_spec"):
                    _value_spec(out, spec, node, "constant" if kind == "const_declaration" else "variable")


def _spec_doc(spec: Node, declaration: Node) -> str:
    """A spec in a group has its comment inside the group; a lone spec, above `const`/`type`."""
    return leading_doc(spec, _DOC) or (leading_doc(declaration, _DOC) if declaration.named_child_count == 1 else "")


def _receiver_type(method: Node) -> str:
    receiver = method.child_by_field_name("receiver")
    parameter = next((c for c in receiver.named_children if c.type == "parameter_declaration"), None) if receiver else None
    kind = parameter.child_by_field_name("type") if parameter is not None else None
    while kind is not None and kind.type in ("pointer_type", "generic_type"):
        kind = kind.child_by_field_name("type") or next((c for c in kind.named_children), None)
    return text(kind)


def _type(out: Collector, spec: Node, declaration: Node) -> None:
    name = text(spec.child_by_field_name("name"))
    body = spec.child_by_field_name("type")
    doc = _spec_doc(spec, declaration)
    if body is not None and body.type in ("struct_type", "interface_type"):
        # `type Server struct`: the fields and methods are definitions of their own.
        members = next((c for c in body.named_children if c.type == "field_declaration_list"), body)
        opening = members if members is not body else next((c for c in body.children if c.type == "{"), None)
        out.add(name, "class", spec, "type " + out.header(spec, opening), doc)
        _members(out, members, name)
    else:
        out.add(name, "class", spec, "type " + out.header(spec, None), doc)


def _members(out: Collector, members: Node, owner: str) -> None:
    for member in members.named_children:
        if member.type == "field_declaration":
            names = [text(n) for n in member.children_by_field_name("name")]
            if not names:  # an embedded type: `db.Conn` is reached as `.Conn`
                names = [text(member.child_by_field_name("type")).rsplit(".", 1)[-1].lstrip("*")]
            for name in names:
                out.add(name, "attribute", member, one_line(text(member)), leading_doc(member, _DOC), owner)
        elif member.type == "method_elem":
            out.add(text(member.child_by_field_name("name")), "method", member, one_line(text(member)),
                    leading_doc(member, _DOC), owner)


def _value_spec(out: Collector, spec: Node, declaration: Node, kind: str) -> None:
    keyword = "const " if kind == "constant" else "var "
    signature = keyword + out.assignment(spec, spec.child_by_field_name("value"))
    doc = _spec_doc(spec, declaration)
    for name in spec.children_by_field_name("name"):
        out.add(text(name), "constant" if kind == "constant" else "variable", spec, signature, doc)


def _imports(out: Collector, declaration: Node) -> None:
    specs = [c for c in declaration.named_children if c.type == "import_spec"]
    for group in declaration.named_children:
        if group.type == "import_spec_list":
            specs.extend(c for c in group.named_children if c.type == "import_spec")
    for spec in specs:
        path = spec.child_by_field_name("path")
        module = text(next((c for c in path.named_children if c.type.endswith("_content")), None)) if path else ""
        out.add_import(module or text(path).strip('"`'), (), text(spec.child_by_field_name("name")), 0, spec)
