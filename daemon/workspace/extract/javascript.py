"""TypeScript, TSX, JavaScript, JSX: functions (declared, overloaded, or bound to a `const`),
classes with their methods and fields, interfaces with their members, type aliases, enums,
module constants and variables, CommonJS `exports.x = ...`; imports (ES, re-exports, `require`)."""

from __future__ import annotations

from tree_sitter import Node

from nearcode.daemon.workspace.extract.common import Collector, leading_doc, one_line, text
from nearcode.daemon.workspace.model import DefinitionKind

_FUNCTIONS = frozenset({"function_declaration", "generator_function_declaration", "function_signature"})
_CLASSES = frozenset({"class_declaration", "abstract_class_declaration"})
_BOUND_FUNCTIONS = frozenset({"arrow_function", "function_expression", "function", "generator_function"})
_DOC = ("/**",)


def extract(out: Collector, root: Node) -> None:
    for child in root.named_children:
        if out.full:
            return
        _statement(out, child, None)


def _start(anchor: Node) -> Node:
    """Where a signature starts: `export` (or `export default`), after any decorators."""
    return next((c for c in anchor.children if c.type != "decorator"), anchor)


def _statement(out: Collector, node: Node, outer: Node | None) -> None:
    kind = node.type
    anchor = outer or node
    if kind == "import_statement":
        _import(out, node)
    elif kind == "export_statement":
        if node.child_by_field_name("source") is not None:
            _reexport(out, node)
        elif (declaration := node.child_by_field_name("declaration")) is not None:
            _statement(out, declaration, node)
    elif kind in _FUNCTIONS:
        signature = out.header(node, node.child_by_field_name("body"), _start(anchor)).rstrip(";")
        out.add(text(node.child_by_field_name("name")), "function", node, signature, leading_doc(anchor, _DOC))
    elif kind in _CLASSES:
        _class(out, node, anchor)
    elif kind == "interface_declaration":
        _interface(out, node, anchor)
    elif kind == "type_alias_declaration":
        signature = out.assignment(node, node.child_by_field_name("value"), _start(anchor)).rstrip(";")
        out.add(text(node.child_by_field_name("name")), "class", node, signature, leading_doc(anchor, _DOC))
    elif kind == "enum_declaration":
        _enum(out, node, anchor)
    elif kind in ("lexical_declaration", "variable_declaration"):
        _declarators(out, node, anchor)
    elif kind == "ambient_declaration":
        for child in node.named_children:
            _statement(out, child, node)
    elif kind == "expression_statement":
        for child in node.named_children:
            if child.type == "assignment_expression":
                _commonjs_export(out, child, node)
            elif child.type == "internal_module" and (body := child.child_by_field_name("body")) is not None:
                for statement in body.named_children:
                    _statement(out, statement, None)


def _class(out: Collector, node: Node, anchor: Node) -> None:
    name = text(node.child_by_field_name("name"))
    body = node.child_by_field_name("body")
    out.add(name, "class", node, out.header(node, body, _start(anchor)), leading_doc(anchor, _DOC))
    for member in body.named_children if body is not None else []:
        kind = member.type
        if kind == "method_definition":
            signature = out.header(member, member.child_by_field_name("body"))
            out.add(text(member.child_by_field_name("name")), "method", member, signature, leading_doc(member, _DOC), name)
        elif kind in ("abstract_method_signature", "method_signature"):
            signature = out.header(member, None).rstrip(";")
            out.add(text(member.child_by_field_name("name")), "method", member, signature, leading_doc(member, _DOC), name)
        elif kind in ("public_field_definition", "field_definition"):
            field = member.child_by_field_name("name") or member.child_by_field_name("property")
            signature = out.assignment(member, member.child_by_field_name("value")).rstrip(";")
            out.add(text(field), "attribute", member, signature, leading_doc(member, _DOC), name)


def _interface(out: Collector, node: Node, anchor: Node) -> None:
    name = text(node.child_by_field_name("name"))
    body = node.child_by_field_name("body")
    out.add(name, "class", node, out.header(node, body, _start(anchor)), leading_doc(anchor, _DOC))
    for member in body.named_children if body is not None else []:
        kind = {"method_signature": "method", "property_signature": "attribute"}.get(member.type)
        if kind == "method":
            out.add(text(member.child_by_field_name("name")), "method", member,
                    one_line(text(member)).rstrip(";,"), leading_doc(member, _DOC), name)
        elif kind == "attribute":
            out.add(text(member.child_by_field_name("name")), "attribute", member,
                    one_line(text(member)).rstrip(";,"), leading_doc(member, _DOC), name)


def _enum(out: Collector, node: Node, anchor: Node) -> None:
    name = text(node.child_by_field_name("name"))
    body = node.child_by_field_name("body")
    out.add(name, "class", node, out.header(node, body, _start(anchor)), leading_doc(anchor, _DOC))
    for member in body.named_children if body is not None else []:
        if member.type == "property_identifier":
            out.add(text(member), "attribute", member, text(member), "", name)
        elif member.type == "enum_assignment":
            out.add(text(member.child_by_field_name("name")), "attribute", member, one_line(text(member), 120), "", name)


def _declarators(out: Collector, node: Node, anchor: Node) -> None:
    keyword = text(node.children[0]) if node.children else "const"
    prefix = ("export " if anchor.type == "export_statement" else "") + keyword + " "
    doc = leading_doc(anchor, _DOC)
    for declarator in node.named_children:
        if declarator.type != "variable_declarator":
            continue
        target = declarator.child_by_field_name("name")
        value = declarator.child_by_field_name("value")
        if value is not None and _require(out, target, value, node):
            continue
        if target is None or target.type != "identifier":
            continue
        if value is not None and value.type in _BOUND_FUNCTIONS:
            signature = prefix + out.header(declarator, value.child_by_field_name("body"))
            out.add(text(target), "function", declarator, signature, doc)
        else:
            kind: DefinitionKind = "constant" if keyword == "const" else "variable"
            out.add(text(target), kind, declarator, prefix + out.assignment(declarator, value), doc)
        doc = ""  # the comment above belongs to the first declarator


def _commonjs_export(out: Collector, assignment: Node, statement: Node) -> None:
    """`exports.name = ...` / `module.exports.name = ...`."""
    left = assignment.child_by_field_name("left")
    right = assignment.child_by_field_name("right")
    if left is None or right is None or left.type != "member_expression":
        return
    owner = text(left.child_by_field_name("object"))
    if owner not in ("exports", "module.exports"):
        return
    name = text(left.child_by_field_name("property"))
    doc = leading_doc(statement, _DOC)
    if right.type in _BOUND_FUNCTIONS:
        out.add(name, "function", assignment, out.header(assignment, right.child_by_field_name("body")), doc)
    else:
        out.add(name, "variable", assignment, out.assignment(assignment, right), doc)


def _module_name(string: Node | None) -> str:
    if string is None:
        return ""
    fragment = next((c for c in string.named_children if c.type == "string_fragment"), None)
    return text(fragment) if fragment is not None else text(string).strip("'\"`")


def _require(out: Collector, target: Node | None, value: Node, statement: Node) -> bool:
    """`const x = require("m")`, `const {a, b: c} = require("m")`: an import, not a variable."""
    if value.type != "call_expression" or text(value.child_by_field_name("function")) != "require":
        return False
    arguments = value.child_by_field_name("arguments")
    string = next((c for c in arguments.named_children if c.type == "string"), None) if arguments else None
    if string is None:
        return False
    names: list[str] = []
    alias = ""
    if target is not None and target.type == "identifier":
        alias = text(target)
    elif target is not None and target.type == "object_pattern":
        for prop in target.named_children:
            key = prop.child_by_field_name("key") if prop.type == "pair_pattern" else prop
            names.append(text(key))
    out.add_import(_module_name(string), names, alias, 0, statement)
    return True


def _import(out: Collector, node: Node) -> None:
    source = node.child_by_field_name("source")
    names: list[str] = []
    alias = ""
    for clause in node.named_children:
        if clause.type == "import_require_clause":  # TS `import x = require("m")`
            alias = text(next((c for c in clause.named_children if c.type == "identifier"), None))
            source = clause.child_by_field_name("source")
        if clause.type != "import_clause":
            continue
        for part in clause.named_children:
            if part.type == "identifier":
                names.append("default")
                alias = text(part)
            elif part.type == "namespace_import":
                names.append("*")
                alias = text(next((c for c in part.named_children if c.type == "identifier"), None))
            elif part.type == "named_imports":
                names.extend(text(s.child_by_field_name("name")) for s in part.named_children if s.type == "import_specifier")
    out.add_import(_module_name(source), names, alias, 0, node)


def _reexport(out: Collector, node: Node) -> None:
    names: list[str] = []
    alias = ""
    for part in node.named_children:
        if part.type == "export_clause":
            names.extend(text(s.child_by_field_name("name")) for s in part.named_children if s.type == "export_specifier")
        elif part.type == "namespace_export":
            alias = text(next((c for c in part.named_children if c.type == "identifier"), None))
    out.add_import(_module_name(node.child_by_field_name("source")), names or ["*"], alias, 0, node)
