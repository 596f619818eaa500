"""Module doc."""
from __future__ import annotations
import os, sys as system
import a.b.c as abc
from ..pkg.mod import (x, y as z)
from . import sibling
from .m import *
MAX: int = 3
name = "x"
a, b = 1, 2
CONFIG = {
    "a": 1,
}
@dataclass
class Foo(Base, metaclass=M):
    """A foo.

    More."""
    x: int = 0
    y = 1
    def __init__(self, v: int) -> None:
        self.v = v
        self.x = 2
        self.items: list[int] = []
    @property
    async def bar(self, x: int = 1,  # the x
                  *args, key: str = "k", **kw,
    ) -> str:
        '''
        Bar it.
        '''
        return ""
    class Inner:
        def deep(self): pass
if TYPE_CHECKING:
    import typing
try:
    import ujson as json
except ImportError:
    import json
def top(a, /, b, *, c=None):
    def nested(): pass
