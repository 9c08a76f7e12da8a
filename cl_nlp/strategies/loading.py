"""Strategies named by where their class lives, without packaging: ``path/to/file.py:ClassName``
or ``package.module:ClassName`` wherever a strategy name is taken (``--strategy``, YAML).

The class must subclass :class:`~cl_nlp.strategies.base.Strategy`. Its options dataclass is the
class attribute ``Options`` (``class MyStrategy(Strategy): Options = MyOptions``); a class
without one takes no options (:class:`~cl_nlp.strategies.base.NoOptions`). A file is imported
once per process under a private module name; a module is imported by its dotted name (it must
be importable: on ``PYTHONPATH`` or installed).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from cl_nlp.errors import UserError
from cl_nlp.strategies.base import NoOptions, Strategy

_loaded: dict[str, tuple[type, type]] = {}  # spec -> (strategy class, options class)


def is_class_spec(name: str) -> bool:
    """Whether ``name`` has the form ``<file.py or module>:<ClassName>``."""
    target, colon, class_name = name.rpartition(":")
    return bool(colon and target and class_name)


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def strategy_label(name: str) -> str:
    """A short name for tags and folder names: ``path/to/my_file.py:Cls`` -> ``my_file:Cls``;
    registered names and ``package.module:Cls`` stay as they are."""
    if not is_class_spec(name):
        return name
    target, _, class_name = name.rpartition(":")
    return f"{Path(target).stem}:{class_name}" if _is_file(target) else name


def load_strategy_class(name: str) -> tuple[type, type]:
    """(strategy class, options dataclass) named by ``name``; every failure is one :class:`UserError` line."""
    if name in _loaded:
        return _loaded[name]
    target, _, class_name = name.rpartition(":")
    if not class_name.isidentifier():
        raise UserError(f"strategy {name!r}: {class_name!r} after the last ':' is not a class name")
    module = _import_file(name, target) if _is_file(target) else _import_module(name, target)
    cls = getattr(module, class_name, None)
    if cls is None:
        found = sorted(n for n, v in vars(module).items() if inspect.isclass(v) and issubclass(v, Strategy)
                       and v is not Strategy)
        hint = f"; Strategy subclasses there: {', '.join(found)}" if found else "; it defines no Strategy subclass"
        raise UserError(f"strategy {name!r}: {target!r} has no class {class_name!r}{hint}")
    if not (inspect.isclass(cls) and issubclass(cls, Strategy)):
        raise UserError(f"strategy {name!r}: {class_name} is not a subclass of cl_nlp.strategies.Strategy")
    options_cls = getattr(cls, "Options", NoOptions)
    if not (inspect.isclass(options_cls) and dataclasses.is_dataclass(options_cls)):
        raise UserError(f"strategy {name!r}: {class_name}.Options must be a dataclass (its options), "
                        f"got {options_cls!r}")
    _loaded[name] = (cls, options_cls)
    return cls, options_cls


def _import_file(name: str, target: str) -> ModuleType:
    path = Path(target).expanduser()
    if not path.is_file():
        raise UserError(f"strategy {name!r}: no such file {target!r}" + ("" if target.endswith(".py") else
                                                                          " (a strategy file ends in .py)"))
    path = path.resolve()
    # A private module name per file: two files both called strategy.py do not collide.
    module_name = f"cl_nlp_user_strategy_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"strategy {name!r}: {target!r} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 (the user's code, anything: one line, not a cl-nlp crash)
        del sys.modules[module_name]
        raise UserError(f"strategy {name!r}: importing {target!r} failed: {_describe(exc)}") from None
    return module


def _import_module(name: str, target: str) -> ModuleType:
    if not all(part.isidentifier() for part in target.split(".")):
        raise UserError(f"strategy {name!r}: {target!r} is neither a .py file nor a dotted module name")
    try:
        return importlib.import_module(target)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (target == exc.name or target.startswith(exc.name + ".")):  # the module itself, not one it imports
            raise UserError(f"strategy {name!r}: no module named {exc.name!r} (is it on PYTHONPATH or installed?)") from None
        raise UserError(f"strategy {name!r}: importing {target!r} failed: {_describe(exc)}") from None
    except Exception as exc:  # noqa: BLE001 (the user's module: any failure is one line)
        raise UserError(f"strategy {name!r}: importing {target!r} failed: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    """``Type: first line`` of an exception, with the file and line where it rose for syntax errors."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
