"""The two-layer rule: the pure modules (anytls_ref/*.py) do no I/O and mirror the spec.

Every anytls_ref/*.py except __main__.py is pure; anytls_ref/net/ is where sockets, TLS and
threads live and is exempt, as are the probe (anytls_ref/probe/) and the tools that print or read
files (anytls_ref/tools/) and the command line's parts (anytls_ref/cli/). Randomness and clocks
are passed in, so these imports are banned, and a pure module imports none of cli, net, probe or
tools (they may import it).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "anytls_ref"
PURE_MODULES = sorted(p for p in PACKAGE.glob("*.py") if p.name != "__main__.py")
FORBIDDEN = {"socket", "ssl", "threading", "time", "random", "select", "selectors", "asyncio",
             "os", "subprocess"}
#: the package's subpackages that do I/O: a pure module imports none of them
IO_SUBPACKAGES = {"cli", "net", "probe", "tools"}
#: modules that implement no single spec section; their docstring still names the module
NO_SPEC_SECTION = {"__init__.py": "anytls_ref — ", "errors.py": "anytls_ref.errors — "}


def imported_modules(tree: ast.AST) -> set[str]:
    """Top-level names of every absolute import, wherever it appears in the module."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def package_imports(tree: ast.AST) -> set[str]:
    """What a top-level module of anytls_ref imports from its own package, by first name
    (``from .net.client import X``, ``from . import net`` and ``import anytls_ref.net`` → net)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("anytls_ref."))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0:
                if module.split(".")[0] != "anytls_ref":
                    continue
                module = module.removeprefix("anytls_ref").removeprefix(".")
            if module:
                names.add(module.split(".")[0])
            else:  # from . import net, frame
                names.update(alias.name for alias in node.names)
    return names


def dynamic_imports(tree: ast.AST) -> list[str]:
    """Calls to __import__ / importlib.import_module, which would dodge the check above."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in ("__import__", "import_module"):
                found.append(ast.unparse(node))
    return found


def test_the_pure_layer_is_all_there():
    names = {p.stem for p in PURE_MODULES}
    assert {"errors", "frame", "auth", "settings", "padding", "version", "rules", "effects",
            "reuse", "socksaddr", "uot", "params"} <= names


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: p.name)
def test_pure_module_imports_no_io_module(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert imported_modules(tree) & FORBIDDEN == set()
    assert dynamic_imports(tree) == []


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: p.name)
def test_pure_module_imports_nothing_from_net_probe_or_tools(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert package_imports(tree) & IO_SUBPACKAGES == set()


@pytest.mark.parametrize("path", PURE_MODULES, ids=lambda p: p.name)
def test_pure_module_opens_with_the_spec_section_it_implements(path):
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    if path.name in NO_SPEC_SECTION:
        assert docstring.startswith(NO_SPEC_SECTION[path.name])
        return
    # e.g. anytls_ref.frame — spec "Client › Session": the frame format ...
    pattern = rf'anytls_ref\.{re.escape(path.stem)} — spec "[^"]+"'
    assert re.match(pattern, docstring), docstring.splitlines()[0] if docstring else "(none)"


def test_the_import_check_catches_forbidden_imports():
    # the check itself must be able to fail
    for source in ["import os", "import os.path", "from time import monotonic",
                   "def f():\n    import socket", "import random as r"]:
        assert imported_modules(ast.parse(source)) & FORBIDDEN, source
    assert imported_modules(ast.parse("from . import frame")) == set()
    assert dynamic_imports(ast.parse("importlib.import_module('ssl')"))


def test_the_import_check_catches_imports_of_net_probe_and_tools():
    for source in ["from .net.client import Client", "from .net import tls", "from . import probe",
                   "from . import frame, tools", "from .tools.spec_report import TAG",
                   "import anytls_ref.net.client", "import anytls_ref.probe as p",
                   "from anytls_ref.tools import inspect_padding", "from anytls_ref import net",
                   "def f():\n    from .probe.cli import run_probe"]:
        assert package_imports(ast.parse(source)) & IO_SUBPACKAGES, source
    assert package_imports(ast.parse("from .frame import Frame\nfrom . import padding")) == {
        "frame", "padding"}
    assert package_imports(ast.parse("import anytls_ref\nimport network\nfrom netaddr import x")) \
        == set()


#: anytls_ref/config/: what users already hold (links, configs, command lines) read into settings;
#: pure like the modules above (the command line reads the files), each naming its document
CONFIG_MODULES = sorted((PACKAGE / "config").glob("*.py"))


@pytest.mark.parametrize("path", CONFIG_MODULES, ids=lambda p: f"config/{p.name}")
def test_config_modules_are_pure_and_open_with_what_they_read(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    assert imported_modules(tree) & FORBIDDEN == set()
    assert dynamic_imports(tree) == []
    assert package_imports(tree) & IO_SUBPACKAGES == set()
    name = "anytls_ref.config" if path.stem == "__init__" else f"anytls_ref.config.{path.stem}"
    assert (ast.get_docstring(tree) or "").startswith(f"{name} — ")
