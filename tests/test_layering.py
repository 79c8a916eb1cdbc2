"""Imports flow one way: the checks read plain-number traces and never import a framework."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "lossdoctor"
CHECKS_MAY_IMPORT = {"lossdoctor.trace", "lossdoctor.findings", "lossdoctor.fmt",
                     "lossdoctor.vocab", "lossdoctor.thresholds", "lossdoctor.checks"}
STDLIB_AND_NUMPY = {"__future__", "collections", "dataclasses", "functools", "math", "statistics",
                    "typing", "numpy"}


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_checks_import_only_trace_findings_and_formatting() -> None:
    for path in sorted((SRC / "checks").glob("*.py")):
        for module in imports(path):
            top = module.split(".")[0]
            ok = (top in STDLIB_AND_NUMPY
                  or any(module == m or module.startswith(m + ".") for m in CHECKS_MAY_IMPORT))
            assert ok, f"{path.name} imports {module}"


def test_lower_modules_do_not_import_upper_ones() -> None:
    lower = ["fmt.py", "vocab.py", "thresholds.py", "trace.py", "findings.py", "case.py",
             "factory.py", "errors.py"]
    upper = ("lossdoctor.checks", "lossdoctor.probe", "lossdoctor.repairs", "lossdoctor.report",
             "lossdoctor.monitor", "lossdoctor.cli", "lossdoctor.theory", "lossdoctor.lab")
    for name in lower:
        for module in imports(SRC / name):
            assert not module.startswith(upper), f"{name} imports {module}"
    for path in (SRC / "probe").glob("*.py"):
        assert not any(m.startswith("lossdoctor.repairs") for m in imports(path)), path.name
    for path in (SRC / "theory").glob("*.py"):
        assert "lossdoctor.cli" not in imports(path), path.name


def test_causes_read_only_findings_and_the_trace() -> None:
    allowed = CHECKS_MAY_IMPORT | {"lossdoctor.causes"}
    for path in sorted((SRC / "causes").glob("*.py")):
        for module in imports(path):
            ok = (module.split(".")[0] in STDLIB_AND_NUMPY | {"html"}
                  or any(module == m or module.startswith(m + ".") for m in allowed))
            assert ok, f"causes/{path.name} imports {module}"
