"""The function, method or class under the cursor, located with tree-sitter.

One small table per language says which nodes are definitions, where their parameters are and
which parameter nodes name nothing the caller passes (`self`, a Go receiver, Rust's `&self`).
Everything downstream (docstrings, tests) works on the `Symbol` this returns, never on the tree.
Grammars and parsers come from the shared language table (nearcode/shared/languages.py), which the
daemon's workspace index uses too.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node, Tree

from nearcode.shared.languages import family, parser_for
from nearcode.shared.text import utf16_to_index


@dataclass(frozen=True)
class LanguageSpec:
    functions: frozenset[str]  # node types of functions and methods
    classes: frozenset[str]
    doc_comment_prefixes: tuple[str, ...]  # comments before a definition that count as its doc


_JS_FUNCTIONS = frozenset({"function_declaration", "method_definition", "generator_function_declaration"})
_JS_CLASSES = frozenset({"class_declaration"})

# Keyed by language family (nearcode/shared/languages.py): TypeScript and JSX are JavaScript here.
LANGUAGE_SPECS: dict[str, LanguageSpec] = {
    "python": LanguageSpec(frozenset({"function_definition"}), frozenset({"class_definition"}), ()),
    "javascript": LanguageSpec(_JS_FUNCTIONS, _JS_CLASSES, ("/**",)),
    "go": LanguageSpec(
        frozenset({"function_declaration", "method_declaration"}),
        frozenset({"type_declaration"}),
        ("//",),
    ),
    "rust": LanguageSpec(
        frozenset({"function_item"}),
        frozenset({"struct_item", "enum_item", "trait_item"}),
        ("///",),
    ),
    "java": LanguageSpec(
        frozenset({"method_declaration", "constructor_declaration"}),
        frozenset({"class_declaration", "interface_declaration", "record_declaration", "enum_declaration"}),
        ("/**",),
    ),
}

# Arrow functions and function expressions bound to a name: `const add = (a, b) => a + b`.
_JS_BOUND_FUNCTIONS = frozenset({"arrow_function", "function_expression", "function"})
# Wrappers whose comment belongs to the definition inside: `export function f`, `@decorator def f`.
_WRAPPERS = frozenset({"export_statement", "decorated_definition", "lexical_declaration", "variable_declaration"})


@dataclass(frozen=True)
class ExistingDoc:
    start_line: int  # 0-based, inclusive
    end_line: int  # inclusive
    text: str


@dataclass(frozen=True)
class Symbol:
    kind: str  # "function", "method" or "class"
    name: str
    language: str
    start_line: int  # first line of the definition itself (after decorators / attributes)
    end_line: int
    doc_anchor_line: int  # first line of what a doc comment goes above (decorators, `export`)
    indent: str  # leading whitespace of the definition line
    body_line: int  # Python: the line after the header, where a docstring goes
    body_indent: str  # Python: indentation of the body
    params: tuple[str, ...]
    returns_value: bool  # has a declared non-void return type, or (Python) a `return <value>`
    existing_doc: ExistingDoc | None
    text: str  # the definition's source
    parent: str = ""  # enclosing class for a method


def supported(language: str) -> bool:
    return family(language) in LANGUAGE_SPECS


PARSE_CHUNK_BYTES = 16 * 1024


def _parse(language: str, data: bytes) -> Tree:
    """Parse in chunks: tree-sitter holds the GIL while it parses, and gives it up between the
    chunks it reads, so a parse on a worker thread leaves the event loop room to run (the parser is
    the thread's own: nearcode/shared/languages.py)."""
    return parser_for(language).parse(lambda offset, _point: data[offset : offset + PARSE_CHUNK_BYTES])


def symbol_at(source: str, language: str, line: int, character: int = 0) -> Symbol | None:
    """The innermost function, method or class containing (line, character); None if there is none.
    `character` is an LSP column (UTF-16 units)."""
    spec = LANGUAGE_SPECS.get(family(language))
    if spec is None:
        return None
    data = source.encode()
    tree = _parse(language, data)
    lines = source.split("\n")
    # tree-sitter's columns are UTF-8 bytes; a column inside a surrogate pair means that character.
    index = utf16_to_index(lines[line], character) if 0 <= line < len(lines) else 0
    if index is None:
        index = utf16_to_index(lines[line], character - 1) or 0
    column = len(lines[line][:index].encode()) if 0 <= line < len(lines) else 0
    node: Node | None = tree.root_node.descendant_for_point_range((line, column), (line, column))
    while node is not None:
        if node.type in spec.functions or node.type in spec.classes or _is_bound_function(node, language):
            return _symbol(node, language, lines)
        node = node.parent
    return None


def all_symbols(source: str, language: str) -> list[Symbol]:
    """Every function, method and class of the file, outermost first (for style detection, tests)."""
    spec = LANGUAGE_SPECS.get(family(language))
    if spec is None:
        return []
    tree = _parse(language, source.encode())
    lines = source.split("\n")
    found: list[Symbol] = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.type in spec.functions or node.type in spec.classes or _is_bound_function(node, language):
            found.append(_symbol(node, language, lines))
        stack.extend(reversed(node.children))
    return found


def _is_bound_function(node: Node, language: str) -> bool:
    return (
        family(language) == "javascript"
        and node.type in _JS_BOUND_FUNCTIONS
        and node.parent is not None
        and node.parent.type == "variable_declarator"
    )


def _symbol(node: Node, language: str, lines: list[str]) -> Symbol:
    spec = LANGUAGE_SPECS[family(language)]
    name_node = node.child_by_field_name("name")
    if node.type == "type_declaration":  # Go: `type X struct {…}` names its spec
        spec_node = next((c for c in node.named_children if c.type == "type_spec"), None)
        name_node = spec_node.child_by_field_name("name") if spec_node else None
    if _is_bound_function(node, language) and node.parent is not None:
        name_node = node.parent.child_by_field_name("name")
    name = _text(name_node) if name_node else "<anonymous>"
    parent_class = _enclosing_class(node, spec)
    kind = "class" if node.type in spec.classes else ("method" if parent_class or node.type == "method_declaration" else "function")
    anchor = _outer(node)
    start_line = node.start_point[0]
    indent = _indent(lines[start_line])
    body_line, body_indent = start_line + 1, indent + "    "
    body = node.child_by_field_name("body")
    if language == "python" and body is not None:
        body_line = body.start_point[0] if body.start_point[0] > start_line else start_line + 1
        body_indent = _indent(lines[body.start_point[0]]) if body.start_point[0] > start_line else indent + "    "
    return Symbol(
        kind=kind,
        name=name,
        language=language,
        start_line=start_line,
        end_line=node.end_point[0],
        doc_anchor_line=anchor.start_point[0],
        indent=indent,
        body_line=body_line,
        body_indent=body_indent,
        params=_params(node, language) if kind != "class" else (),
        returns_value=_returns_value(node, language) if kind != "class" else False,
        existing_doc=_existing_doc(node, anchor, language, spec, lines),
        text=_text(node),
        parent=parent_class,
    )


def _outer(node: Node) -> Node:
    """The node a leading doc comment attaches to: through `export`, decorators, `const f = …`."""
    while node.parent is not None and (
        node.parent.type in _WRAPPERS or node.parent.type == "variable_declarator"
    ):
        node = node.parent
    return node


def _enclosing_class(node: Node, spec: LanguageSpec) -> str:
    parent = node.parent
    while parent is not None:
        if parent.type in spec.classes or parent.type in ("impl_item", "class_body"):
            target = parent if parent.type != "class_body" else parent.parent
            if target is None:
                return ""
            name = target.child_by_field_name("name") or target.child_by_field_name("type")
            return _text(name) if name else ""
        if parent.type in spec.functions:
            return ""  # a function nested in a function is not a method
        parent = parent.parent
    return ""


def _params(node: Node, language: str) -> tuple[str, ...]:
    params = node.child_by_field_name("parameters")
    if params is None and family(language) == "javascript":
        params = node.child_by_field_name("parameter")  # `x => …`: a lone identifier
        return (_text(params),) if params is not None else ()
    if params is None:
        return ()
    names: list[str] = []
    for child in params.named_children:
        names.extend(_param_names(child, language))
    if language == "python" and names and names[0] in ("self", "cls") and _enclosing_class(node, LANGUAGE_SPECS["python"]):
        names = names[1:]
    return tuple(n for n in names if n and n != "/")


def _param_names(node: Node, language: str) -> list[str]:
    kind = node.type
    if kind in ("comment", "self_parameter", "line_comment", "block_comment", "keyword_separator", "positional_separator"):
        return []
    if kind == "identifier":
        return [_text(node)]
    if language == "python":
        inner = node.child_by_field_name("name") or next((c for c in node.named_children if c.type == "identifier"), None)
        return [_text(inner)] if inner is not None else []
    if language == "go":  # `a, b int`: every identifier before the type
        return [_text(c) for c in node.named_children if c.type == "identifier"]
    if language == "rust":
        pattern = node.child_by_field_name("pattern")
        return [_text(pattern)] if pattern is not None else []
    if language == "java":
        name = node.child_by_field_name("name")
        if name is None:  # spread_parameter: `int... c`
            declarator = next((c for c in node.named_children if c.type == "variable_declarator"), None)
            name = declarator.child_by_field_name("name") if declarator else None
        return [_text(name)] if name is not None else []
    # JavaScript / TypeScript: required_parameter, optional_parameter, assignment_pattern, rest_pattern
    pattern = node.child_by_field_name("pattern") or node.child_by_field_name("left")
    if pattern is None and kind == "rest_pattern":
        pattern = next((c for c in node.named_children if c.type == "identifier"), None)
    if pattern is not None and pattern.type == "rest_pattern":
        pattern = next((c for c in pattern.named_children if c.type == "identifier"), pattern)
    if pattern is None:
        return []
    return [_text(pattern)]  # a destructuring pattern is documented by its text, e.g. `{y}`


def _returns_value(node: Node, language: str) -> bool:
    if language == "python":
        if node.child_by_field_name("return_type") is not None:
            return _text(node.child_by_field_name("return_type")) not in ("None", "NoReturn")
        return _has_value_return(node.child_by_field_name("body"), {"function_definition", "lambda", "class_definition"})
    if language == "go":
        return node.child_by_field_name("result") is not None
    if language == "rust":
        return node.child_by_field_name("return_type") is not None
    if language == "java":
        kind = node.child_by_field_name("type")
        return kind is not None and _text(kind) != "void"
    return_type = node.child_by_field_name("return_type")
    if return_type is not None:
        return _text(return_type).lstrip(": ").strip() not in ("void", "Promise<void>", "never")
    return _has_value_return(node.child_by_field_name("body"), {"function_declaration", "arrow_function", "function_expression", "class_declaration", "method_definition"})


def _has_value_return(body: Node | None, nested: set[str]) -> bool:
    if body is None:
        return False
    if body.type not in ("block", "statement_block"):
        return True  # an arrow function's expression body is its value
    stack = list(body.children)
    while stack:
        current = stack.pop()
        if current.type in nested:
            continue
        if current.type == "return_statement" and current.named_child_count > 0:
            return True
        stack.extend(current.children)
    return False


def _existing_doc(node: Node, anchor: Node, language: str, spec: LanguageSpec, lines: list[str]) -> ExistingDoc | None:
    if language == "python":
        body = node.child_by_field_name("body")
        first = body.named_children[0] if body is not None and body.named_children else None
        if first is not None and first.type == "expression_statement" and first.named_children and first.named_children[0].type == "string":
            return ExistingDoc(first.start_point[0], first.end_point[0], _text(first))
        return None
    # Comments right above the definition (no blank line between), skipping attributes/annotations.
    sibling = anchor.prev_sibling
    expected_end = anchor.start_point[0] - 1
    while sibling is not None and sibling.type in ("attribute_item", "decorator", "annotation", "marker_annotation"):
        expected_end = sibling.start_point[0] - 1
        sibling = sibling.prev_sibling
    start = end = None
    while sibling is not None and sibling.type in ("comment", "line_comment", "block_comment") and _last_row(sibling) == expected_end:
        text = _text(sibling)
        if not text.startswith(spec.doc_comment_prefixes):
            break
        start = sibling.start_point[0]
        end = end if end is not None else _last_row(sibling)
        expected_end = start - 1
        if text.startswith("/**"):
            break  # one block comment is the whole doc
        sibling = sibling.prev_sibling
    if start is None or end is None:
        return None
    return ExistingDoc(start, end, "\n".join(lines[start : end + 1]))


def _last_row(node: Node) -> int:
    """The last line a node covers: Rust's line comments end at column 0 of the next line."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point[0] else row


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(" \t"))]


def _text(node: Node | None) -> str:
    return node.text.decode(errors="replace") if node is not None and node.text is not None else ""
