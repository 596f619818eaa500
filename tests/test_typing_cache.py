"""The typing-through cache, on plain strings."""

from __future__ import annotations

from nearcode.lsp.typing_cache import TypingCache

URI = "file:///t.py"
BEFORE = "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n"
AFTER = "\n    return a\n"


def test_typing_through_and_walking_back() -> None:
    cache = TypingCache()
    cache.store(URI, BEFORE + "        a, b = ", AFTER, "b, a + b")
    hit = cache.lookup(URI, BEFORE + "        a, b = b,", AFTER)
    assert hit is not None and hit.text == " a + b" and hit.reason == "typed through"
    assert cache.lookup(URI, BEFORE + "        a, b = b, x", AFTER) is None  # typed something else
    back = cache.lookup(URI, BEFORE + "        a, b", AFTER)
    assert back is not None and back.text == " = b, a + b" and back.reason == "deleted back"
    same = cache.lookup(URI, BEFORE + "        a, b = ", AFTER)
    assert same is not None and same.text == "b, a + b" and same.reason == "same place"


def test_fully_typed_suggestion_is_not_offered_again() -> None:
    cache = TypingCache()
    cache.store(URI, BEFORE + "        a, b = ", AFTER, "b, a + b")
    assert cache.lookup(URI, BEFORE + "        a, b = b, a + b", AFTER) is None


def test_other_place_or_changed_text_after_cursor_misses() -> None:
    cache = TypingCache()
    cache.store(URI, BEFORE + "        ", AFTER, "a, b = b, a + b")
    assert cache.lookup(URI, BEFORE + "        ", "\n    return b\n") is None
    assert cache.lookup("file:///other.py", BEFORE + "        ", AFTER) is None
    assert cache.lookup(URI, "# changed\n" + BEFORE + "        ", AFTER) is None


def test_accepting_a_line_shows_the_next_one() -> None:
    cache = TypingCache()
    text = "total = 0\n    for x in xs:\n        total += x\n    return total"
    prefix = "def s(xs):\n    "
    cache.store(URI, prefix, "\n", text)
    # The editor accepted the first line and the cursor sits at the start of the next one.
    hit = cache.lookup(URI, prefix + "total = 0\n", "\n")
    assert hit is not None and hit.reason == "next line"
    assert hit.text == "    for x in xs:\n        total += x\n    return total"
    # With auto-indent the cursor is after the indentation: typed through.
    hit = cache.lookup(URI, prefix + "total = 0\n    for x in xs:\n        ", "\n")
    assert hit is not None and hit.text == "total += x\n    return total"


def test_bounded() -> None:
    cache = TypingCache(max_entries=3)
    for i in range(10):
        cache.store(URI, f"x{i} = ", "", "1")
    assert len(cache) == 3
