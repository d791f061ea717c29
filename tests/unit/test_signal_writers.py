"""Issue 15, done when: every store function that writes signals or outcomes
has a production caller. A writer only the simulator and the tests call
means a risk rule that never fires on real traffic (as customer_history and
orders_seen.outcome were before issue 15)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WRITER_MODULES = {
    "signals": ROOT / "store" / "signals.py",
    "outcomes": ROOT / "store" / "outcomes.py",
}
PRODUCTION = ("activities", "clients", "workflows", "starters", "workers", "store")
_WRITE = re.compile(r"\b(INSERT|UPDATE|DELETE)\b")
_IMPORT = re.compile(r"from store import ([^\n(]+)")


def _strings(node: ast.AST) -> str:
    return " ".join(
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )


def _writers(path: Path) -> set[str]:
    """Public async functions whose SQL (inline, or a module constant they
    use) inserts, updates or deletes."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {
        target.id: _strings(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found = set()
    for node in tree.body:
        if not isinstance(node, ast.AsyncFunctionDef) or node.name.startswith("_"):
            continue
        used = [constants.get(n.id, "") for n in ast.walk(node) if isinstance(n, ast.Name)]
        if _WRITE.search(" ".join([_strings(node), *used])):
            found.add(node.name)
    return found


def _production_calls(module: str) -> set[str]:
    calls: set[str] = set()
    for package in PRODUCTION:
        for path in (ROOT / package).rglob("*.py"):
            if "simulat" in path.name or path == WRITER_MODULES.get(module):
                continue
            text = path.read_text(encoding="utf-8")
            aliases = set()
            for imported in _IMPORT.findall(text):
                for part in imported.split(","):
                    name, _, alias = part.strip().partition(" as ")
                    if name.strip() == module:
                        aliases.add((alias or name).strip())
            for alias in aliases:
                calls |= set(re.findall(rf"\b{re.escape(alias)}\.([a-z_]+)\(", text))
    return calls


def test_every_signal_and_outcome_writer_has_a_production_caller() -> None:
    for module, path in WRITER_MODULES.items():
        writers = _writers(path)
        assert writers, module
        missing = sorted(writers - _production_calls(module))
        assert missing == [], f"store.{module}: no production caller for {missing}"


def test_the_check_finds_the_writers_it_should() -> None:
    assert {"add_to_list", "remove_from_list", "set_customer_history"} <= _writers(
        WRITER_MODULES["signals"]
    )
    assert "record" in _writers(WRITER_MODULES["outcomes"])
