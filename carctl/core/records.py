"""The hot path's records: a fast constructor for the frozen records built on every tick (Inputs, Commands, the
drive's status), and enums that hash as fast as the dict lookups they key.

Rules of this module:
- A frozen dataclass's own __init__ sets each field through object.__setattr__, which costs about twice what
  setting the slot directly does; on the lockstep simulator's hot path (a record of 44 fields per tick) that is a
  tenth of the tick. fast_constructor() writes, once per class, the plain function that sets the slots directly.
- It gives exactly what the keyword form gives: every field must be passed (by keyword or in the fields' order; no
  defaults are filled in), and it is refused for a record that is not frozen and slotted or whose constructor does
  more than set its fields, which it would skip: a __post_init__, an InitVar, an __init__ or __new__ of its own (or
  none generated). tests/core/test_records.py compares it with the keyword form.
- The generated source is made only from the class's own field names (identifiers, checked), never from data.
- dataclasses.replace() builds a dict of every field and calls the dataclass constructor (about 20 us for the
  controller's 58-field state; some 25,000 a simulated day, a fifth of the lockstep's time). replace() here gives the
  same record for a frozen, slotted record built by its fields alone (as fast_constructor), copying the slots directly
  (generated once per class, as fast_constructor); for any other class it is dataclasses.replace itself. A field
  name it does not have is a TypeError, as there. tests/core/test_records.py compares the two.
- enum.Enum hashes a member by hashing its name in Python code, on every dict lookup and set membership test
  (``RULES[state.mode]``, ``HANDLERS[state.phase]``, ``Fault.OVERLOAD in faults``): about a tenth of a core step.
  A member is a singleton compared by identity, so hashing by identity is as correct and costs nothing. Iteration
  order of a set of members was never stable across processes (names hash with a per-process seed); whatever is
  shown or recorded is sorted.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any, TypeVar

Record = TypeVar("Record")


def fast_constructor(cls: type[Record]) -> Callable[..., Record]:
    """A function taking every field of ``cls`` (a frozen, slotted dataclass) and returning the record, equal to
    ``cls(**fields)``."""
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} is not a frozen dataclass")
    if "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} has no slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} checks its fields in __post_init__; build it with its own constructor")
    if not _generated_constructor(cls):
        raise TypeError(f"{cls.__name__}'s constructor is not the one dataclass generates from its fields")
    specs = dataclasses.fields(cls)
    if not all(spec.init for spec in specs):
        raise TypeError(f"{cls.__name__} has a field its constructor does not take (init=False)")
    names = [spec.name for spec in specs]
    # The generated code's own names all start with an underscore: a field may not.
    if not all(name.isidentifier() and not name.startswith("_") for name in names):
        raise TypeError(f"{cls.__name__} has a field name the constructor cannot use")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    namespace.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    _set_{name}(_made, {name})\n" for name in names)
    source = f"def make_{cls.__name__}({', '.join(names)}):\n    _made = _new(_cls)\n{body}    return _made\n"
    return _compiled(cls, source, namespace, f"make_{cls.__name__}",
                     f"{cls.__name__}(...) with every field given, built without the dataclass constructor's cost.")


def _generated_constructor(cls: type) -> bool:
    """The dataclass's constructor is the one dataclass generated, taking exactly its fields (no InitVar), and the
    record is made by object.__new__: then setting the slots is all that building one does. A user's __init__, which
    dataclass keeps, may convert or check what it is given; dataclasses.replace() calls it, so the copy must too."""
    init = cls.__dict__.get("__init__")
    code = getattr(init, "__code__", None)
    if code is None or code.co_filename != "<string>" or cls.__new__ is not object.__new__:
        return False
    taken = code.co_varnames[1:code.co_argcount + code.co_kwonlyargcount]
    return list(taken) == [spec.name for spec in dataclasses.fields(cls) if spec.init]  # type: ignore[arg-type]


def _fast_record(cls: type) -> list[str] | None:
    """The field names of a frozen, slotted dataclass with no __post_init__ and every field in its constructor, whose
    records the generated functions build exactly; None for any other class."""
    if (not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
            or "__slots__" not in cls.__dict__ or hasattr(cls, "__post_init__") or not _generated_constructor(cls)):
        return None
    specs = dataclasses.fields(cls)
    names = [spec.name for spec in specs]
    if not all(spec.init for spec in specs) or not all(
            name.isidentifier() and not name.startswith("_") for name in names):
        return None
    return names


def fast_replacer(cls: type[Record]) -> Callable[..., Record]:
    """A function ``(record, **changes)`` equal to ``dataclasses.replace(record, **changes)`` for a record of exactly
    ``cls`` (a frozen, slotted dataclass without __post_init__); TypeError for any other class."""
    names = _fast_record(cls)
    if names is None:
        raise TypeError(f"{cls.__name__} is not a frozen, slotted dataclass built by its fields alone")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls,
                                 "_setters": {name: getattr(cls, name).__set__ for name in names},
                                 "_unknown": f"{cls.__qualname__}.__init__() got an unexpected keyword argument "}
    namespace.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    body = "".join(f"    _set_{name}(_made, _record.{name})\n" for name in names)
    # Every slot copied, then the changed ones set (an unknown name: the TypeError the constructor would raise).
    source = (f"def replace_{cls.__name__}(_record, /, **_changes):\n"
              "    if type(_record) is not _cls:\n"
              "        raise TypeError(f'not a {_cls.__name__}: {type(_record).__name__}')\n"
              f"    _made = _new(_cls)\n{body}"
              "    for _name, _value in _changes.items():\n"
              "        _set = _setters.get(_name)\n"
              "        if _set is None:\n"
              "            raise TypeError(_unknown + repr(_name))\n"
              "        _set(_made, _value)\n"
              "    return _made\n")
    return _compiled(cls, source, namespace, f"replace_{cls.__name__}",
                     f"dataclasses.replace() for a {cls.__name__}, built by copying its slots.")


def _compiled(cls: type, source: str, namespace: dict[str, Any], name: str, doc: str) -> Callable[..., Any]:
    """The function ``name`` that ``source`` defines, named and documented as if written in ``cls``'s module."""
    exec(source, namespace)  # noqa: S102 - the callers build the source from checked field names, nothing else
    made: Callable[..., Any] = namespace[name]
    made.__doc__ = doc
    made.__qualname__ = made.__name__
    made.__module__ = cls.__module__
    return made


_REPLACERS: dict[type, Callable[..., Any]] = {}


def replace(record: Record, /, **changes: Any) -> Record:
    """dataclasses.replace(record, **changes): the same record, built by copying the slots of a frozen, slotted
    record (see the rules above)."""
    try:
        replacer = _REPLACERS[type(record)]
    except KeyError:
        cls = type(record)
        replacer = _REPLACERS[cls] = fast_replacer(cls) if _fast_record(cls) is not None else dataclasses.replace
    made: Record = replacer(record, **changes)
    return made


class IdentityEnum(enum.Enum):
    """An Enum whose members hash by identity (see the rules above)."""

    __hash__ = object.__hash__


__all__ = ["IdentityEnum", "fast_constructor", "fast_replacer", "replace"]
