"""Registries by name: one mechanism for datasets, models, likelihoods, schedules, ...

The CLI, config files and Python API all reach a component through its registry,
so adding a model is one decorated function, never a new branch in a factory.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

T = TypeVar("T")


class UnknownName(LookupError):
    """A name that no registry entry has; the message lists the known names."""


class Registry(Generic[T]):
    """A named table of constructors: ``@MODELS.register("vae")``, ``MODELS.get("vae")``. Each registry is also
    found by its ``kind`` (:meth:`of_kind`), so a config field can name the registry its values come from without
    importing the module that fills it."""

    _by_kind: dict[str, "Registry"] = {}

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        Registry._by_kind.setdefault(kind, self)  # the first of a kind: vaelab's own

    @classmethod
    def of_kind(cls, kind: str) -> "Registry | None":
        """The registry of ``kind``, once the module that makes it has been imported."""
        return cls._by_kind.get(kind)

    def register(self, name: str) -> Callable[[T], T]:
        def add(item: T) -> T:
            if name in self._items:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            self._items[name] = item
            return item

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "(none)"
            raise UnknownName(f"unknown {self.kind} {name!r}; known: {known}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._items))

    def names(self) -> list[str]:
        return sorted(self._items)
