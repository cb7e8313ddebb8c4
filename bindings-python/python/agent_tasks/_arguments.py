"""Wrong arguments as `InvalidArgument`, naming the argument and what was
expected, in Python's words.

Two kinds of `TypeError` would otherwise reach the caller: Python's own,
when a call does not bind to a method's signature (an unknown keyword, a
missing argument), and pyo3's, when the native module cannot convert an
argument (``must be real number, not str``, with the note ``while processing
'timeout'`` from Python 3.11; on 3.10 the argument that does not fit its
annotation is named). `checked` wraps a class's public methods so that both
become `InvalidArgument`; a `TypeError` raised anywhere else (deeper down,
by other code) passes unchanged. Values the layer converts itself go
through the helpers below. Only the error path pays for the inspection.
"""

from __future__ import annotations

from collections import abc
import functools
import inspect
import os
import re
import typing
from types import TracebackType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, TypeVar, Union

from ._errors import InvalidArgument
from ._native import closest_name

_C = TypeVar("_C", bound=type)

# pyo3's note on an extraction error: "while processing 'timeout'"
_NOTE = re.compile(r"^while processing '(\w+)'")
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


def _expected(annotation: Any) -> str:
    text = annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
    return text.replace("typing.", "").replace("os.PathLike", "PathLike")


def _fits(value: Any, annotation: Any) -> bool:
    """Whether `value` fits `annotation`, as far as a plain check can tell
    (what it cannot check, it lets through)."""
    if annotation is Any:
        return True
    if annotation is type(None) or annotation is None:
        return value is None
    origin = typing.get_origin(annotation)
    if origin is Union:
        return any(_fits(value, arm) for arm in typing.get_args(annotation))
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    args = typing.get_args(annotation)
    if origin in (abc.Mapping, dict) and len(args) == 2:
        return isinstance(value, abc.Mapping) and all(
            _fits(k, args[0]) and _fits(v, args[1]) for k, v in value.items()
        )
    if origin in (abc.Sequence, list) and len(args) == 1:
        return isinstance(value, (list, tuple)) and all(_fits(i, args[0]) for i in value)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    target = origin if origin is not None else annotation
    if isinstance(target, type):
        try:
            return isinstance(value, target)
        except TypeError:
            return True
    return True


def _hints(fn: Callable[..., Any]) -> Dict[str, Any]:
    """`fn`'s annotations, evaluated; one by one when some do not resolve
    (a name imported only for type checking stays a string)."""
    try:
        return typing.get_type_hints(fn)
    except Exception:
        pass
    hints: Dict[str, Any] = {}
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, getattr(fn, "__globals__", {}))
            except Exception:
                pass  # kept as written: shown, not checked
        hints[name] = annotation
    return hints


def _noted(exc: BaseException) -> Optional[str]:
    """The argument pyo3 names in the note it adds to an extraction error
    (``while processing 'timeout'``, Python 3.11 and later)."""
    for note in getattr(exc, "__notes__", ()):
        found = _NOTE.match(str(note))
        if found:
            return found.group(1)
    return None


def _converted(fn: Callable[..., Any], exc: TypeError, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Optional[InvalidArgument]:
    tb: Optional[TracebackType] = exc.__traceback__
    if tb is None:
        return None
    message = str(exc)
    signature = inspect.signature(fn)
    params = [p for p in signature.parameters if p != "self"]
    where = fn.__qualname__
    if tb.tb_next is None:
        # Raised by the call itself: the arguments do not bind to `fn`.
        found = _BINDING.search(message)
        name = found.group(1) if found else "arguments"
        reason = message.split("() ", 1)[-1]
        if "unexpected keyword" in message:
            close = closest_name(name, params)
            hint = f" (did you mean `{close}`?)" if close else ""
            reason = f"{where}() takes no argument `{name}`{hint}; it takes {', '.join(params)}"
        return InvalidArgument(
            f"invalid argument `{name}`: {reason}", code="INVALID_ARGUMENT", argument=name
        )
    last = tb
    while last.tb_next is not None:
        last = last.tb_next
    if last.tb_frame.f_code is not fn.__code__:
        return None  # raised deeper down, by other code
    # Raised by a native call in `fn`'s own body: a conversion that failed.
    try:
        bound = dict(signature.bind(*args, **kwargs).arguments)
    except TypeError:
        bound = {}
    bound.pop("self", None)
    hints = _hints(fn)
    name = _noted(exc)
    if name == "id" and "task" in params:
        name = "task"
    if name is None or name not in bound:
        # Python 3.10 adds no note: the argument that does not fit its
        # annotation is the one.
        misfits = [n for n, v in bound.items() if n in hints and not _fits(v, hints[n])]
        if not misfits:
            return None
        name = misfits[0]
    if name in hints:
        return invalid(name, _expected(hints[name]), bound[name])
    return InvalidArgument(
        f"invalid argument `{name}`: {message}", code="INVALID_ARGUMENT", argument=name
    )


def checked_function(fn: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def checked_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except TypeError as exc:
                converted = _converted(fn, exc, args, kwargs)
                if converted is None:
                    raise
                raise converted from None

        return checked_async

    @functools.wraps(fn)
    def checked_call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TypeError as exc:
            converted = _converted(fn, exc, args, kwargs)
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
