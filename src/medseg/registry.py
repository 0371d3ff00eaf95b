"""A small named registry with "did you mean" errors."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from medseg.errors import ConfigError, suggest

T = TypeVar("T")

__all__ = ["Registry"]


class Registry(Generic[T]):
    """Map names to objects (classes, factories).

    Examples
    --------
    >>> r = Registry("colour")
    >>> @r.register("red")
    ... class Red: ...
    >>> r.get("red").__name__
    'Red'
    >>> r.get("rd")
    Traceback (most recent call last):
    ...
    medseg.errors.ConfigError: unknown colour 'rd' (did you mean 'red'?); available: red
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._loaders: list[Callable[[], None]] = []

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator registering an object under ``name`` (a second, different object is refused)."""

        def deco(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is already registered")
            self._items[name] = obj
            return obj

        return deco

    def add_loader(self, loader: Callable[[], None]) -> None:
        """Register a callable that imports the modules which populate this registry."""
        self._loaders.append(loader)

    def _load(self) -> None:
        while self._loaders:
            self._loaders.pop(0)()

    def get(self, name: str) -> T:
        """The object registered as ``name``; an unknown name raises ConfigError with the nearest one."""
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise ConfigError(
                f"unknown {self.kind} '{name}'{suggest(name, self._items)}; available: {', '.join(sorted(self._items))}"
            ) from None

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        self._load()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._items)
