"""Context retrieval, ranking, hysteresis and budget fitting: fast, no model (an in-memory index)."""

from __future__ import annotations

import time

from nearcode.daemon.context.assembler import ContextAssembler, ContextChoice
from nearcode.daemon.context.code_scan import (
    assigned_classes,
    code_lines,
    enclosing_class_bases,
    python_imported_names,
    unresolved_names,
)
from nearcode.daemon.context.retrieval import gather
from nearcode.daemon.context.window import CursorWindow
from nearcode.daemon.prompting.context_fit import Snippet, fit_context
from nearcode.daemon.prompting.templates import fim_templates
from tests.memory_index import MemoryIndex

DECORATORS = '''from dataclasses import dataclass

@dataclass
class FieldValidatorDecoratorInfo:
    """A container for field validators."""
    fields: tuple[str, ...]
    mode: str

@dataclass
class RootValidatorDecoratorInfo:
    """A container for data from `@root_validator`."""
    mode: str

def inspect_validator(validator, mode) -> bool:
    """Look at a validator's signature."""
    return True
'''
MODELS = '''class Model:
    """The base model."""
    name: str = "x"

    def validate(self, value: int, *, strict: bool = False) -> "Model":
        """Validate a value."""
        return self

def make_model(name: str) -> Model:
    return Model()
'''
CURRENT = '''from .. import _decorators
from ..models import Model

def root_validator(*, pre=False, skip_on_failure=False):
    mode = 'before' if pre else 'after'
    model = Model()
    '''
PATH = "pkg/deprecated/class_validators.py"  # the index's paths are workspace-relative
ABSOLUTE = "/ws/" + PATH  # requests carry absolute paths


def project(delay_s: float = 0.0) -> MemoryIndex:
    return MemoryIndex("/ws", {
        "pkg/__init__.py": "",
        "pkg/_decorators.py": DECORATORS,
        "pkg/models.py": MODELS,
        "pkg/helpers.py": "def shout(text: str) -> str:\n    return text.upper()\n",
        "pkg/deprecated/__init__.py": "",
        "pkg/deprecated/class_validators.py": CURRENT,
    }, delay_s)


def window(before: str, after: str = "") -> CursorWindow:
    return CursorWindow(PATH, "python", "\n".join(before.split("\n")[-40:]), after, before + after)


async def test_imported_names_resolve_through_the_imports_first() -> None:
    found = await gather(project(), window(CURRENT), 1.0)
    best = max(found.candidates, key=lambda c: c.score)
    assert best.name == "Model" and best.path == "pkg/models.py"
    assert "imported as Model" in best.reason
    # A class comes with its members, as a stub: signature, first doc line, no body.
    assert "def validate(self, value: int, *, strict: bool = False)" in best.text
    assert '"""The base model."""' in best.text and "return self" not in best.text


async def test_a_module_used_near_the_cursor_offers_the_members_that_match_the_words_there() -> None:
    found = await gather(project(), window(CURRENT), 1.0)
    members = sorted((c for c in found.candidates if "member of _decorators" in c.reason), key=lambda c: -c.score)
    assert [c.name for c in members][:1] == ["RootValidatorDecoratorInfo"]  # root + validator beat validator


async def test_module_member_used_near_the_cursor_and_names_found_across_the_workspace() -> None:
    before = CURRENT + "info = _decorators.FieldValidatorDecoratorInfo(fields=())\n    x = shout(mode)\n    "
    found = await gather(project(), window(before), 1.0)
    reasons = {c.name: c.reason for c in found.candidates}
    assert "_decorators.FieldValidatorDecoratorInfo used near the cursor" in reasons["FieldValidatorDecoratorInfo"]
    assert reasons["shout"] == "shout used near the cursor, defined in the workspace"
    assert "root_validator" not in reasons  # defined in the current file: the file shows it
    assert "mode" not in reasons  # an attribute found by a bare name is another class's: noise


async def test_open_files_and_recent_edits_rank_by_shared_names() -> None:
    index = project()
    index.files["notes/other.py"] = "\n".join(["unrelated = 1"] * 30 + ["model = Model()", "model.validate(mode)"])
    index.files["notes/far.py"] = "print('nothing in common')\n"
    index.open = ["notes/other.py", "notes/far.py", PATH]
    index.edits = [("pkg/helpers.py", 0, 1, time.monotonic() - 5)]
    found = await gather(index, window(CURRENT + "model.validate(mode, strict=True)\n    shout"), 1.0)
    snippets = [c for c in found.candidates if c.kind in ("snippet", "edit")]
    paths = [c.path for c in snippets]
    assert "notes/other.py" in paths and "notes/far.py" not in paths and PATH not in paths
    other = next(c for c in snippets if c.path == "notes/other.py")
    assert "model.validate(mode)" in other.text and "of names shared" in other.reason
    assert any(c.kind == "edit" and "edited 5 s ago" in c.reason for c in snippets)


async def test_a_slow_index_costs_context_not_time() -> None:
    started = time.monotonic()
    found = await gather(project(delay_s=0.05), window(CURRENT), 0.02)
    assert time.monotonic() - started < 0.06
    assert found.deadline_missed and found.candidates == []
    fast = await gather(project(), window(CURRENT), 0.5)
    assert not fast.deadline_missed and fast.candidates


async def test_the_block_stays_while_typing_along_a_line_and_changes_for_new_names() -> None:
    index = project()
    assembler = ContextAssembler(lambda path: index, deadline_s=5.0)  # the deadline is tested above
    line = "result = model.validate(1, strict=True)"
    first = await assembler.choose("c\x00doc", ABSOLUTE, "python", CURRENT, "\n")
    assert not first.reused and first.candidates
    for n in range(1, len(line) + 1):
        typed = await assembler.choose("c\x00doc", ABSOLUTE, "python", CURRENT + line[:n], "\n")
        assert typed.reused, f"rebuilt after typing {line[:n]!r}: {typed.why}"
        assert typed.candidates == first.candidates
    # A name with a definition appears near the cursor: the block follows it.
    named = await assembler.choose("c\x00doc", ABSOLUTE, "python", CURRENT + line + "\n    shout(", "\n")
    assert not named.reused and "shout" in named.why
    assert any(c.name == "shout" for c in named.candidates)
    # Moving far away in the file is a new place.
    far = await assembler.choose("c\x00doc", ABSOLUTE, "python", CURRENT + "\n" * 80, "\n")
    assert not far.reused and "moved" in far.why
    # Another editor on the same document has its own block.
    other = await assembler.choose("d\x00doc", ABSOLUTE, "python", CURRENT, "\n")
    assert not other.reused


TEMPLATE = fim_templates()["qwen2.5-coder"]
VALUES = {"repo": "ws", "path": "pkg/a.py", "comment": "#"}


async def count_by_words(text: str) -> int:
    return len(text.split())


def part(name: str, words: int, kind: str = "definition") -> Snippet:
    text = "\n".join(f"{name}_{i} = {i}" for i in range(words // 3))
    return Snippet(f"pkg/{name}.py", text, kind, 0, words // 3, f"{name} chosen", f"def:{name}", name)


async def test_parts_are_kept_cut_or_dropped_with_their_reasons_and_tokens() -> None:
    parts = (part("first", 30), part("third", 30, "snippet"), part("second", 300), part("fourth", 300, "snippet"))
    fitted = await fit_context(parts, TEMPLATE, 150, count_by_words, VALUES)
    status = {r.name: (r.status, r.tokens) for r in fitted.reports}
    assert status["first"][0] == "kept" and status["third"][0] == "kept"
    assert status["second"][0] == "cut" and status["second"][1] <= 150  # a definition is cut to its head
    assert status["fourth"][0] == "dropped"  # a snippet is all or nothing
    dropped = next(r for r in fitted.reports if r.name == "fourth")
    assert dropped.reason.startswith("dropped: needs") and dropped.tokens > 100
    kept_tokens = sum(r.tokens for r in fitted.reports if r.status != "dropped")
    assert fitted.tokens <= 150 and kept_tokens <= fitted.tokens
    assert fitted.text.startswith("<|repo_name|>ws\n") and fitted.text.endswith("<|file_sep|>pkg/a.py\n")
    assert fitted.kept == ("def:first", "def:third", "def:second")


async def test_a_rebuilt_block_keeps_the_previous_parts_first_in_their_order() -> None:
    first = await fit_context((part("a", 30), part("b", 30)), TEMPLATE, 500, count_by_words, VALUES)
    # The new best part goes after the ones the engine's cache already holds.
    second = await fit_context((part("c", 30), part("b", 30), part("a", 30)), TEMPLATE, 500, count_by_words, VALUES,
                               first.kept)
    assert second.kept == ("def:a", "def:b", "def:c")
    assert second.text.startswith(first.text[: first.text.rindex("<|file_sep|>pkg/a.py")])


async def test_names_the_file_uses_without_importing_them_are_found_for_an_import_line() -> None:
    far_below = "\n" * 30 + "def later():\n    return inspect_validator(_RootValidatorDecoratorInfo)\n"
    on_import = current_window("from ..", far_below)
    found = await gather(project(), on_import, 1.0)
    by_name = {c.name: c for c in found.candidates}
    # The alias's underscore is dropped to find the definition it stands for.
    for name in ("inspect_validator", "RootValidatorDecoratorInfo"):
        assert "used in this file, defined in the workspace" in by_name[name].reason
        assert by_name[name].score >= 0.9  # the line being written is an import: these lead
    elsewhere = await gather(project(), current_window("x = ", far_below), 1.0)
    assert max(c.score for c in elsewhere.candidates if c.name == "inspect_validator") < 0.5


def current_window(line: str, after: str) -> CursorWindow:
    before = CURRENT + line
    return CursorWindow(PATH, "python", before, "\n".join(after.split("\n")[:10]), before + after)


async def test_neighbouring_parts_from_one_file_share_its_header() -> None:
    a = Snippet("pkg/m.py", "def a(): ...", "definition", key="def:a", name="a")
    b = Snippet("pkg/m.py", "def b(): ...", "definition", key="def:b", name="b")
    c = Snippet("pkg/n.py", "def c(): ...", "definition", key="def:c", name="c")
    fitted = await fit_context((a, b, c), TEMPLATE, 500, count_by_words, VALUES)
    assert "<|file_sep|>pkg/m.py\ndef a(): ...\ndef b(): ...\n<|file_sep|>pkg/n.py\ndef c(): ...\n" in fitted.text
    assert fitted.tokens == await count_by_words(fitted.text)


async def test_a_variable_holding_an_instance_brings_its_class_members() -> None:
    before = CURRENT + "\n" * 50 + "    checked = model.validate(1)\n    again = checked."
    found = await gather(project(), window(before), 1.0)
    # `model = Model()` is far above (outside the window): the file's text says what it holds.
    [holds] = [c for c in found.candidates if "holds a" in c.reason]
    assert holds.name == "Model" and "model holds a Model" in holds.reason and "def validate(" in holds.text


async def test_an_attribute_keeping_a_constructor_argument_brings_its_class_members() -> None:
    """pydantic's `self._generate_schema = generate_schema` with `generate_schema: GenerateSchema`:
    `self._generate_schema.` reaches GenerateSchema's members (`field_name_stack`, the truth of a
    public cross-file case the context had missed)."""
    kept = ("from ..models import Model\n\nclass Handler:\n    def __init__(self, model: Model, size) -> None:\n"
            "        self._model = model  # kept\n        self._size = size\n\n    def check(self, value):\n"
            "        self._model.validate(value)\n        return self._model.")
    assert assigned_classes(kept, {"_model", "_size"}) == {"_model": "Model"}  # `size` says no class
    found = await gather(project(), window(kept), 1.0)
    [holds] = [c for c in found.candidates if "holds a" in c.reason]
    assert holds.name == "Model" and "_model holds a Model" in holds.reason and "def validate(" in holds.text


async def test_a_variable_holding_what_a_method_returns_brings_that_class_members() -> None:
    """httpx's `transport = self._transport_for_url(request.url)`, the method annotated
    `-> BaseTransport`: `transport.` reaches BaseTransport's members. Of two methods of that name
    (httpx's Client and AsyncClient), the one defined nearest above the call counts."""
    current = ("from ..models import Model\n\nclass Client:\n    def _model_for(self, url) -> Model:\n"
               "        return Model()\n\n    def send(self, request):\n        model = self._model_for(request.url)\n"
               "        model.validate(1)\n        return model.\n\nclass AsyncClient:\n"
               "    async def _model_for(self, url) -> Optional[Other]:\n        return None\n")
    before = current[: current.index("model.\n") + len("model.")]
    # (The in-memory index parses with `ast`: it gets the file as last saved, before `model.`.)
    saved = current.replace("return model.", "return model")
    index = MemoryIndex("/ws", {"pkg/__init__.py": "", "pkg/models.py": MODELS, PATH: saved})
    found = await gather(index, CursorWindow(PATH, "python", before, current[len(before):], current), 1.0)
    [holds] = [c for c in found.candidates if "holds a" in c.reason]
    assert holds.name == "Model" and "model holds a Model" in holds.reason and "def validate(" in holds.text


async def test_a_kept_block_is_rebuilt_when_a_definition_in_it_changes_or_goes() -> None:
    index = project()
    assembler = ContextAssembler(lambda path: index, deadline_s=5.0)
    here = CURRENT + "result = model.validate("

    async def request(typed: str = "") -> ContextChoice:
        choice = await assembler.choose("c\x00doc", ABSOLUTE, "python", here + typed, ")\n")
        assembler.built("c\x00doc", tuple(c.key for c in choice.candidates), ABSOLUTE)  # as the prompt would
        return choice

    first = await request()
    model = next(c for c in first.candidates if c.name == "Model")
    assert "strict: bool = False)" in model.text
    # Lines shifting above it (a comment added at the top of models.py) change nothing shown.
    index.files["pkg/models.py"] = "# the models\n\n" + MODELS
    assert (await request("1")).reused
    # Its method gains a parameter: the block must not keep showing the old signature.
    index.files["pkg/models.py"] = MODELS.replace("strict: bool = False)", "strict: bool = False, context: dict | None = None)")
    changed = await request("1,")
    assert not changed.reused and "changed in their files" in changed.why and "Model" in changed.why, changed.why
    assert "context: dict | None = None" in next(c for c in changed.candidates if c.name == "Model").text
    assert (await request("1, ")).reused  # and then it stays again
    # The file is deleted: what it defined leaves the block.
    del index.files["pkg/models.py"]
    gone = await request("1, s")
    assert not gone.reused and "Model" in gone.why, gone.why
    assert all(c.path != "pkg/models.py" for c in gone.candidates)


EXTRACTOR = '''class AnnotationExtractor:
    """Extract type annotations from a callable, returning None whenever there is none."""

    def __init__(self, callable):
        """Remember the callable's signature, if it has one that can be read."""

    def get_return_type(self):
        """Return the return type if it is not empty, and None when it is not annotated."""

    def get_first_param_type(self):
        """Return the type annotation of the first argument if it is not empty, else None."""
'''


async def test_a_class_stub_too_long_for_the_share_keeps_every_signature_before_its_docs() -> None:
    index = MemoryIndex("/ws", {"pkg/extract.py": EXTRACTOR, PATH: ""})
    before = "from ..extract import AnnotationExtractor\n\ndef convert(f):\n    xtr = AnnotationExtractor(f)\n    t = xtr."
    found = await gather(index, CursorWindow(PATH, "python", before, "", before), 1.0)
    stub = next(c for c in found.candidates if c.name == "AnnotationExtractor")
    parts = (Snippet(stub.path, stub.text, stub.kind, key=stub.key, name=stub.name, shorter=stub.shorter),)
    roomy = await fit_context(parts, TEMPLATE, 500, count_by_words, VALUES)
    assert "Return the type annotation of the first argument" in roomy.text  # it fits whole: docs and all
    tight = await fit_context(parts, TEMPLATE, 60, count_by_words, VALUES)
    # Cut by its head, the stub would lose the member the cursor needs; without docs it all fits.
    assert "def get_first_param_type(self): ..." in tight.text
    assert "Return the type" not in tight.text
    report = tight.reports[0]
    assert report.status == "cut" and "without its doc lines" in report.reason and report.tokens <= 60


PROSE = 'def check(value):\n    """Check a value.\n\n    Several lines of prose about the\n    value, the model and the validator\n    that come before the code.\n    """\n    '


async def test_a_name_used_just_below_the_cursor_is_near_and_one_past_the_block_is_not() -> None:
    below = await gather(project(), current_window(PROSE, "\n    return shout(value)\n"), 1.0)
    past_block = await gather(project(), current_window(PROSE, "\n\ndef other():\n    return shout(1)\n"), 1.0)
    score = {c.name: c.score for c in below.candidates}
    # Two lines down is nearer than the docstring and the names above it (they came first before).
    assert score["shout"] > 0.7
    assert max(c.score for c in past_block.candidates if c.name == "shout") < score["shout"] - 0.2


async def test_an_empty_line_under_a_local_import_asks_for_what_the_code_below_uses() -> None:
    line = "def check(value):\n    from ..models import make_model\n    "
    found = await gather(project(), current_window(line, "\n    return inspect_validator(make_model(value))\n"), 1.0)
    by_name = {c.name: c for c in found.candidates}
    assert by_name["inspect_validator"].score >= 0.9  # used below, imported nowhere in the file
    assert "not imported here" in by_name["inspect_validator"].reason
    assert "not imported here" not in by_name["make_model"].reason  # the function imports it


async def test_the_module_typed_on_an_import_line_leads_with_what_it_defines() -> None:
    far_below = "\n" * 30 + "def later():\n    return inspect_validator(shout_twice('x'))\n"
    index = project()
    index.files["pkg/helpers.py"] = "def shout_twice(text: str) -> str:\n    return text.upper() * 2\n"
    found = await gather(index, current_window("from ..helpers", far_below), 1.0)
    score = {c.name: c.score for c in found.candidates}
    assert score["shout_twice"] >= 0.9
    assert score["inspect_validator"] < 0.5  # defined in pkg/_decorators.py, not in the module typed


def test_unresolved_names_are_free_names_of_the_code() -> None:
    text = 'def f():\n    """Returns Something_else."""\n    # CommentName\n    return mod.AttrName + ValueError + FreeName\n'
    assert unresolved_names(text, {"f"}, "python") == ["FreeName"]
    assert "make_model" in python_imported_names("def g():\n    from .models import (Model,\n        make_model)\n")


def test_code_lines_blank_prose_and_keep_the_line_count() -> None:
    window = '    the end of a docstring\n    """\n    x = helper(1)  # why\n'
    assert code_lines(window, "python", starts_in_prose=True) == ["", "", "    x = helper(1)  ", ""]
    assert code_lines('a = 1\ndef f():\n    """begins', "python") == ["a = 1", "def f():", "    "]


async def test_a_module_just_typed_after_its_dot_offers_the_members_the_file_does_not_use_yet() -> None:
    index = project()
    index.files["pkg/_git.py"] = ("def is_git_repo(dir) -> bool:\n    return True\n\n"
                                  "def have_git() -> bool:\n    return True\n\n"
                                  "def git_revision(dir) -> str:\n    return ''\n\n"
                                  "def _run(args):\n    return args\n")
    # A function's own import (the index keeps only a file's top-level ones) names the module.
    text = "def version():\n    from .. import _git as git\n\n    ok = git.is_git_repo('.') and git."
    found = await gather(index, current_window(text, ""), 1.0)
    best = sorted(found.candidates, key=lambda c: -c.score)
    assert best[0].name == "have_git" and "git. being written, not used in this file yet" in best[0].reason
    assert "_run" not in {c.name for c in found.candidates}  # private: only once `git._` is typed
    typed = await gather(index, current_window(text + "git_r", ""), 1.0)
    assert max(typed.candidates, key=lambda c: c.score).name == "git_revision"


async def test_a_from_import_being_written_offers_what_the_module_defines_that_the_file_lacks() -> None:
    index = project()
    index.files["pkg/errors.py"] = ("class BrokenError(Exception):\n    pass\n\nclass ClosedError(Exception):\n    pass\n\n"
                                    "class ConnectionFailed(OSError):\n    pass\n\nclass _Hidden(Exception):\n    pass\n")
    # Re-exports: the names imported are used nowhere else in the file.
    line = "from ..errors import BrokenError as BrokenError\nfrom ..errors import ClosedError as ClosedError\nfrom ..errors import"
    found = await gather(index, current_window(line, ""), 1.0)
    offered = {c.name: c for c in found.candidates if "module being imported" in c.reason}
    assert set(offered) == {"ConnectionFailed"}, set(offered)
    assert offered["ConnectionFailed"].score >= 0.9
    typed = await gather(index, current_window("from ..errors import Clo", ""), 1.0)
    assert {c.name for c in typed.candidates if "module being imported" in c.reason} == {"ClosedError"}


async def test_self_dot_in_a_subclass_offers_its_base_class_first() -> None:
    index = project()
    index.files["pkg/reload.py"] = ("class BaseReload:\n    should_exit: bool = False\n\n"
                                    "    def __init__(self, config):\n        self.config = config\n\n"
                                    "    def restart(self) -> None:\n        pass\n")
    text = ("from ..reload import BaseReload\n\n\nclass WatchReload(BaseReload):\n    \"\"\"Reloads on changes.\n\n"
            "    More prose:\n    \"\"\"\n\n    def __init__(self, config):\n        super().__init__(config)\n\n"
            "    def loop(self):\n        for change in self.watch():\n            if ")
    far = "\n".join(f"    # line {i}" for i in range(60))  # the class line is out of the near window
    index.files[PATH] = ""
    before = text.replace("    def loop", far + "\n    def loop")
    found = await gather(index, CursorWindow(PATH, "python", "\n".join(before.split("\n")[-40:]), "", before,
                                             ("BaseReload",)), 1.0)
    base = next(c for c in found.candidates if c.name == "BaseReload")
    assert "a base of the class the cursor is in" in base.reason and "should_exit" in base.text
    typed = before + "self."
    found = await gather(index, CursorWindow(PATH, "python", "\n".join(typed.split("\n")[-40:]), "", typed,
                                             ("BaseReload",)), 1.0)
    assert max(found.candidates, key=lambda c: c.score).name == "BaseReload"


def test_the_bases_of_the_class_around_the_cursor() -> None:
    source = ("class A(base.Stream, Mixin[T], metaclass=Meta):\n    \"\"\"Doc.\n\n    Prose at its own indent\n    \"\"\"\n\n"
              "    def f(self):\n        if x:\n            y = (\n                1,\n            )\n            ")
    assert enclosing_class_bases(source) == ("base.Stream", "Mixin")
    assert enclosing_class_bases("class A(B):\n    pass\n\n\ndef f(\n    a,\n):\n    ") == ()
    assert enclosing_class_bases("class B:\n    def g(self):\n        ") == ()
