"""Loading a diagnosis case from ``FILE.py:FACTORY`` (the CLI's TARGET)."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from lossdoctor.errors import FactoryError

REQUIRED = ("model", "inputs", "targets", "loss_fn")
OPTIONAL = ("optimizer", "task")


def user_output() -> contextlib.AbstractContextManager[Any]:
    """Send what user code prints to stderr, so it cannot corrupt a report on stdout."""
    return contextlib.redirect_stdout(sys.stderr)


def exit_call(e: SystemExit) -> str:
    """How user code ended the process: ``sys.exit(3)``."""
    return f"sys.exit({e.code!r})" if e.code is not None else "sys.exit()"


def load_factory(target: str) -> dict[str, Any]:
    """Import ``FILE.py:FACTORY``, call it and check the dict it returns.

    What the file prints goes to stderr; ``sys.exit`` in it is a :class:`FactoryError`.
    """
    path_s, sep, name = target.rpartition(":")
    if not sep or not path_s or not name:
        raise FactoryError(f"expected FILE.py:FACTORY, got {target!r}")
    path = Path(path_s)
    if not path.is_file():
        raise FactoryError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"_lossdoctor_target_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise FactoryError(f"cannot import {path} (is it a .py file?)")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.resolve().parent))
    try:
        with user_output():
            spec.loader.exec_module(module)
    except SystemExit as e:
        raise FactoryError(f"importing {path} called {exit_call(e)}") from e
    except Exception as e:
        raise FactoryError(f"importing {path} raised {type(e).__name__}: {e}") from e
    finally:
        sys.path.pop(0)
    factory = getattr(module, name, None)
    if factory is None:
        raise FactoryError(f"{path} has no {name!r}")
    if not callable(factory):
        raise FactoryError(f"{path}:{name} is not callable")
    try:
        with user_output():
            made = factory()
    except SystemExit as e:
        raise FactoryError(f"{path}:{name}() called {exit_call(e)}") from e
    except Exception as e:
        raise FactoryError(f"{path}:{name}() raised {type(e).__name__}: {e}") from e
    if not isinstance(made, dict):
        raise FactoryError(f"{path}:{name}() must return a dict with keys {', '.join(REQUIRED)}; "
                           f"got {type(made).__name__}")
    missing = [k for k in REQUIRED if k not in made]
    unknown = [k for k in made if k not in REQUIRED + OPTIONAL]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown {', '.join(unknown)}")
        raise FactoryError(f"{path}:{name}() returned a dict with {'; '.join(parts)} "
                           f"(keys: {', '.join(REQUIRED)}, optional {', '.join(OPTIONAL)})")
    return made
