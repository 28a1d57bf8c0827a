"""The library sits where charmcraft publishes and fetches it, with the fields it reads
(charmcraft's `get_lib_internals`: constant LIBID, LIBAPI, LIBPATCH at module level)."""

from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIB = ROOT / "lib" / "charms" / "lxd_integrator" / "v0" / "lxd.py"


def test_the_library_is_where_fetch_lib_puts_it_with_constant_metadata() -> None:
    name = re.search(r"^name:\s*(\S+)", (ROOT / "metadata.yaml").read_text(), re.M)
    assert name and name.group(1).replace("-", "_") == LIB.parents[1].name, "lib/charms/<charm name with _>/"
    fields = {}
    tree = ast.parse(LIB.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    fields[target.id] = node.value.value
    assert re.fullmatch(r"[0-9a-f]{32}", str(fields["LIBID"]))
    assert fields["LIBAPI"] == int(LIB.parent.name[1:]) == 0
    assert isinstance(fields["LIBPATCH"], int) and fields["LIBPATCH"] >= 2
    assert ast.get_docstring(tree), "a module docstring (shown on Charmhub)"


def test_the_changelog_at_the_top_names_every_libpatch() -> None:
    text = LIB.read_text()
    patch = int(re.search(r"^LIBPATCH = (\d+)$", text, re.M).group(1))  # type: ignore[union-attr]
    changelog = text[text.index("# Changelog") : text.index("\nfrom __future__")]
    assert text.index("# Changelog") < text.index("LIBID = "), "at the top, before the code"
    for n in range(1, patch + 1):
        assert f"# - LIBPATCH {n}:" in changelog, n
