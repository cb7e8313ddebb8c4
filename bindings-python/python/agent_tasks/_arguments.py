"""Wrong arguments as `InvalidArgument`, naming the argument and what was
expected, in Python's words.

The native module names the arguments it converts itself; what would
otherwise reach the caller is Python's own `TypeError` when a call does not
bind to a method's signature (an unknown keyword, a missing argument).
`checked` wraps a class's public methods so that it becomes
`InvalidArgument`; a `TypeError` raised anywhere else (deeper down, by
other code) passes unchanged. Values the layer converts itself go through
the helpers below. Only the error path pays for the inspection.
"""

from __future__ import annotations

from collections import abc
import functools
import inspect
import os
import re
from types import TracebackType
from typing import Any, Callable, Dict, List, Mapping, Optional, TypeVar

from ._errors import InvalidArgument
from ._native import closest_name

_C = TypeVar("_C", bound=type)

# Python: "f() got an unexpected keyword argument 'x'", "f() missing 1
# required positional argument: 'x'", "f() got multiple values for argument 'x'"
_BINDING = re.compile(r"argument(?:s)?:? '(\w+)'")


def invalid(name: str, expected: str, value: Any) -> InvalidArgument:
    """An `InvalidArgument` for `name`: what was expected, what was given."""
    return InvalidArgument(
        f"invalid argument `{name}`: expected {expected}, got {_shown(value)}",
        code="INVALID_ARGUMENT",
        argument=name,
    )


def _shown(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}" if value is not None else "None"


def count(name: str, value: Any) -> int:
    """A non-negative int argument (a cursor, a size)."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise invalid(name, "a non-negative int", value)


def fspath(name: str, value: Any) -> str:
    """A path argument (`str` or `os.PathLike`) as a `str`."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    raise invalid(name, "a path (str or os.PathLike[str])", value)


def optional_fspath(name: str, value: Any) -> Optional[str]:
    """`fspath`, with ``None`` kept."""
    return None if value is None else fspath(name, value)


def strings(name: str, value: Any) -> Optional[List[str]]:
    """One string or several (any iterable of str) as a list; ``None`` kept."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    items = list(value) if isinstance(value, abc.Iterable) else None
    if items is None or not all(isinstance(i, str) for i in items):
        raise invalid(name, "a str or an iterable of str", value)
    return items


def env_dict(name: str, value: Any) -> Optional[Dict[str, str]]:
    """An environment mapping (``{str: str}``) as a dict; ``None`` kept."""
    if value is None or (
        isinstance(value, Mapping)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        return None if value is None else dict(value)
    raise invalid(name, "a Mapping of str to str", value)


def checked_options(call: str, known: Any, options: Mapping[str, Any], **named: Any) -> Dict[str, Any]:
    """A call's keyword options for the native side, which reads them with
    the core's rules: each name checked against `known` (the call's
    TypedDict, the core's names) with the core's "did you mean" hint; paths
    as `str`, one `watch` pattern as a list, an environment checked."""
    names = list(known.__annotations__)
    out = dict(options, **named)
    for name, value in out.items():
        if name not in names and name not in named:
            close = closest_name(name, names)
            hint = f" (did you mean `{close}`?)" if close else ""
            reason = f"{call}() takes no option `{name}`{hint}; it takes {', '.join(names)}"
            raise InvalidArgument(f"invalid argument `{name}`: {reason}", code="INVALID_ARGUMENT", argument=name)
        if name in ("root", "cwd", "track_changes"):
            out[name] = optional_fspath(name, value)
        elif name == "env":
            out[name] = env_dict(name, value)
        elif name == "watch":
            out[name] = strings(name, value)
    return out


def _converted(fn: Callable[..., Any], exc: TypeError) -> Optional[InvalidArgument]:
    """The `InvalidArgument` of a call whose arguments do not bind to `fn`'s
    signature (raised by the call itself, not deeper down)."""
    tb: Optional[TracebackType] = exc.__traceback__
    if tb is None or tb.tb_next is not None:
        return None
    message = str(exc)
    params = [p for p in inspect.signature(fn).parameters if p != "self"]
    found = _BINDING.search(message)
    name = found.group(1) if found else "arguments"
    reason = message.split("() ", 1)[-1]
    if "unexpected keyword" in message:
        close = closest_name(name, params)
        hint = f" (did you mean `{close}`?)" if close else ""
        reason = f"{fn.__qualname__}() takes no argument `{name}`{hint}; it takes {', '.join(params)}"
    return InvalidArgument(f"invalid argument `{name}`: {reason}", code="INVALID_ARGUMENT", argument=name)


def checked_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def checked_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except TypeError as exc:
                converted = _converted(fn, exc)
                if converted is None:
                    raise
                raise converted from None

        return checked_async

    @functools.wraps(fn)
    def checked_call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TypeError as exc:
            converted = _converted(fn, exc)
            if converted is None:
                raise
            raise converted from None

    return checked_call


def checked(cls: _C) -> _C:
    """Wraps the public methods of `cls` (and `__init__`) so that a wrong
    argument raises `InvalidArgument` (see the module docs)."""
    for name, member in list(vars(cls).items()):
        if name != "__init__" and name.startswith("_"):
            continue
        if inspect.isfunction(member):
            setattr(cls, name, checked_function(member))
    return cls


__all__ = ["checked", "checked_function", "checked_options", "invalid", "count", "fspath", "optional_fspath", "strings"]
