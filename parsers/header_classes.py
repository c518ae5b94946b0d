"""The stdlib's header registry, with each header class built once.

`email.headerregistry.HeaderRegistry` builds a new class with `type()` for every header object it
makes (about 0.1 ms each, most of the cost of a short header): a parsed message's every `get()` and
a composed message's every header paid it. The classes it would build are the same each time
(the registry's class for the name, plus the base class), so one per registry class is kept.
"""

from __future__ import annotations

from email.headerregistry import HeaderRegistry


class HeaderClasses(HeaderRegistry):
    def __init__(self) -> None:
        super().__init__()
        self._built: dict[type, type] = {}

    def __getitem__(self, name: str) -> type:
        cls = self.registry.get(name.lower(), self.default_class)
        built = self._built.get(cls)
        if built is None:   # a race builds one twice: both are the same class in all but identity
            built = self._built[cls] = type("_" + cls.__name__, (cls, self.base_class), {})
        return built
