"""Definitions in their shorter forms: the golden signatures of a short stub (data in stub_forms/),
and a class too long for its share keeping every member's name rather than its first members' types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nearcode.daemon.context.render import render_definitions
from nearcode.daemon.context.retrieval import gather
from nearcode.daemon.context.window import CursorWindow
from nearcode.daemon.prompting.context_fit import Snippet, fit_context
from nearcode.daemon.workspace.model import Definition
from tests.memory_index import MemoryIndex
from tests.test_context import TEMPLATE, VALUES, count_by_words

GOLDEN = json.loads((Path(__file__).parent / "stub_forms" / "short_python.json").read_text())


@pytest.mark.parametrize("case", GOLDEN, ids=[case["name"] for case in GOLDEN])
def test_short_python_signatures(case: dict[str, Any]) -> None:
    definition = Definition("x", "x", case["kind"], "m.py", 0, case["input"], "the doc")
    assert render_definitions([definition], "python", "short") == case["short"]


# A class whose long parameter types make its stub too long for a small share even without docs.
STREAMS = '''class NetworkStream:
    """A stream of bytes over a network connection, with its options."""

    def read(self, max_bytes: int, timeout: typing.Optional[float] = None) -> bytes:
        """Read up to max_bytes bytes."""

    def write(self, buffer: bytes, timeout: typing.Optional[float] = None) -> None:
        """Write the whole buffer."""

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: typing.Optional[str] = None, timeout: typing.Optional[float] = None) -> "NetworkStream":
        """Upgrade the stream to TLS."""

    def _reset(self, value: typing.Optional[int]) -> None:
        """Put the stream back as it was."""

    def get_extra_info(self, info: str) -> typing.Any:
        """Information about the transport."""
'''
SAVED = "from .streams import NetworkStream\n\n\nclass TLSStream(NetworkStream):\n    def read(self, n):\n        return b''\n\n"
CURRENT = SAVED + "    def "  # the index has the file as saved, the window as typed


async def test_a_class_too_long_without_docs_keeps_every_public_member_in_short_form() -> None:
    index = MemoryIndex("/ws", {"pkg/streams.py": STREAMS, "pkg/tls.py": SAVED})
    found = await gather(index, CursorWindow("pkg/tls.py", "python", CURRENT, "", CURRENT), 1.0)
    stub = next(c for c in found.candidates if c.name == "NetworkStream")
    short = "without doc lines, parameter types and long defaults"
    assert [how for how, _ in stub.shorter] == ["without its doc lines", *(f"{short}, its {n} most needed members" for n in (5, 3, 2, 1))]
    parts = (Snippet(stub.path, stub.text, stub.kind, key=stub.key, name=stub.name, shorter=stub.shorter),)
    tight = await fit_context(parts, TEMPLATE, 50, count_by_words, VALUES)
    # Without docs it is still too long (cut by its end, it lost `start_tls` and what follows);
    # without parameter types every member fits.
    assert "def start_tls(self, ssl_context, server_hostname=None, timeout=None): ..." in tight.text
    assert "def get_extra_info(self, info) -> typing.Any: ..." in tight.text
    assert "ssl.SSLContext" not in tight.text and "Upgrade the stream" not in tight.text
    # The private member comes last, after every public one.
    assert tight.text.index("def _reset") > tight.text.index("def get_extra_info")
    report = tight.reports[0]
    assert report.status == "cut" and "parameter types" in report.reason and report.tokens <= 50


async def test_the_members_a_subclass_in_the_file_defines_come_last_in_its_base_stub() -> None:
    # TLSStream in the current file defines read (SAVED above): the base's stub shows it last,
    # so a stub cut at its end keeps what the subclass lacks.
    index = MemoryIndex("/ws", {"pkg/streams.py": STREAMS, "pkg/tls.py": SAVED})
    found = await gather(index, CursorWindow("pkg/tls.py", "python", CURRENT, "", CURRENT), 1.0)
    stub = next(c for c in found.candidates if c.name == "NetworkStream")
    order = [line.split("(")[0].split()[-1] for line in stub.text.split("\n") if "def " in line]
    assert order == ["write", "start_tls", "get_extra_info", "_reset", "read"], order


RESULT = """class Result:
    def __init__(self, result, exception):
        pass

    def excinfo(self): ...
    def exception(self): ...
    def force_exception(self, exception): ...
    def wait(self, timeout): ...
    def cancel(self): ...
    def done(self): ...
    def add_done_callback(self, fn): ...
    def get_result(self): ...
"""


async def test_a_member_matching_the_words_near_the_cursor_survives_the_cut_and_the_short_form_names_more() -> None:
    saved = "from .result import Result\n\n\ndef call(fn):\n    result = Result(fn(), None)\n    return result\n"
    current = saved[: saved.rindex("\n")]  # `    return result` typed, the cursor at its end
    index = MemoryIndex("/ws", {"pkg/result.py": RESULT, "pkg/run.py": saved})
    found = await gather(index, CursorWindow("pkg/run.py", "python", current, "", current), 1.0)
    stub = next(c for c in found.candidates if c.name == "Result")
    # The five most needed (get_result matches "result" near the cursor), in the class's order.
    members = [line.split("(")[0].split()[-1] for line in stub.text.split("\n") if "def " in line]
    assert members == ["__init__", "excinfo", "exception", "force_exception", "wait", "get_result"], members
    # Its first short form (one short line each) names the next members too.
    first_short = next(text for how, text in stub.shorter if how.endswith("its 9 most needed members"))
    assert all(f"def {name}(" in first_short for name in ("cancel", "done", "add_done_callback")), first_short
    # Too long even short, it loses the least needed members, not its last lines.
    parts = (Snippet(stub.path, stub.text, stub.kind, key=stub.key, name=stub.name, shorter=stub.shorter),)
    tight = await fit_context(parts, TEMPLATE, 40, count_by_words, VALUES)
    assert "def get_result(self)" in tight.text and "def cancel" not in tight.text, tight.text
    assert tight.text.index("def wait") < tight.text.index("def get_result")  # in the class's order


OVERLOADED = """class Converter:
    @overload
    def register_hook(self, cls: type) -> Callable: ...
    @overload
    def register_hook(self, cls: type, func: Callable) -> None: ...
    def register_hook(self, cls=None, func=None):
        pass

    def structure(self, obj, cl): ...
"""


async def test_a_class_reached_through_an_instance_shows_its_members_before_its_constructor_once_per_name() -> None:
    conf = ("class Config:\n"
            "    def __init__(self, app, host='127.0.0.1', port=8000, uds=None, fd=None, loop='auto', http='auto'):\n"
            "        pass\n\n"
            "    def load(self): ...\n") + OVERLOADED
    saved = "from .conf import Config, Converter\n\n\ndef serve(config: Config, converter: Converter):\n    pass\n"
    current = saved.replace("    pass\n", "    config.load()\n    converter.")
    index = MemoryIndex("/ws", {"pkg/conf.py": conf, "pkg/serve.py": saved})
    found = await gather(index, CursorWindow("pkg/serve.py", "python", current, "", current), 1.0)
    config = next(c for c in found.candidates if c.name == "Config")
    assert config.text.index("def load") < config.text.index("def __init__"), config.text
    converter = next(c for c in found.candidates if c.name == "Converter")
    assert converter.text.count("def register_hook") == 1 and "register_hook(self, cls=None, func=None)" in converter.text
    # Named as a class (a call being written), the constructor leads.
    called = saved.replace("    pass\n", "    other = Config(")
    found = await gather(index, CursorWindow("pkg/serve.py", "python", called, "", called), 1.0)
    config = next(c for c in found.candidates if c.name == "Config")
    assert config.text.split("\n")[1].lstrip().startswith("def __init__"), config.text


CONVERTER = """class Converter:
    def __init__(self, detailed_validation=True):
        pass

    def register_unstructure_hook(self, cls: type, func: Callable[[Any], Any]) -> None:
        pass

    def register_unstructure_hook_func(self, check_func: Callable[[Any], bool], func: Callable[[Any], Any]) -> None:
        pass

    def register_structure_hook(self, cls: type, func: Callable[[Any, type], Any]) -> None:
        pass

    def unstructure(self, obj: Any, unstructure_as: Any = None) -> Any:
        pass

    def structure(self, obj: Any, cl: type) -> Any:
        pass

    def copy(self, detailed_validation: bool | None = None) -> Converter:
        pass
"""


async def test_a_member_the_file_does_not_use_yet_comes_before_one_it_does() -> None:
    # The file registered the unstructure hook already: the model can copy that name from the
    # text; what it cannot write without the stub is the structure hook's.
    saved = ("from .converters import Converter\n\n\ndef configure(converter: Converter):\n"
             "    converter.register_unstructure_hook(Union, unstructure_union)\n    pass\n")
    current = saved.replace("    pass\n", "    converter.")
    index = MemoryIndex("/ws", {"pkg/converters.py": CONVERTER, "pkg/setup.py": saved})
    found = await gather(index, CursorWindow("pkg/setup.py", "python", current, "", current), 1.0)
    stub = next(c for c in found.candidates if c.name == "Converter")
    # The stub's two most needed members, the form a stub too long for its room falls back to.
    two = next(text for how, text in stub.shorter if how.endswith("its 2 most needed members"))
    assert "def register_structure_hook(" in two and "def register_unstructure_hook(" not in two, two


async def test_a_function_stub_has_one_short_form_that_names_no_members() -> None:
    # Member lists are a class's: a function's short form was labelled "its 0 most needed members".
    util = 'def helper(a: int, b: str = "x") -> int:\n    """Help."""\n    return 1\n'
    current = "from .util import helper\n\nhelper("
    index = MemoryIndex("/ws", {"pkg/util.py": util, "pkg/main.py": current + ")\n"})
    found = await gather(index, CursorWindow("pkg/main.py", "python", current, "", current), 1.0)
    stub = next(c for c in found.candidates if c.name == "helper")
    assert stub.shorter == (("without its doc lines", 'def helper(a: int, b: str = "x") -> int: ...'),
                            ("without doc lines, parameter types and long defaults", 'def helper(a, b="x") -> int: ...'))
