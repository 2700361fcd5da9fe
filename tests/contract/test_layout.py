"""The tree explains itself: imports run one way, and the README's Layout names every module there is."""

from __future__ import annotations

import ast
import re

import pytest

from tests.support.processes import REPO

SERVICES = ("auth_service", "profile_service", "board_service")
PACKAGES = ("shared", *SERVICES)


def _imported_packages(package: str) -> dict[str, set[str]]:
    """Map each module of `package` to the top-level packages of this project it imports."""
    found = {}
    for path in (REPO / package).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(REPO))] = names & set(PACKAGES)
    return found


def test_shared_imports_no_service():
    assert {module: names for module, names in _imported_packages("shared").items() if names - {"shared"}} == {}


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_only_itself_and_shared(service):
    allowed = {service, "shared"}
    wrong = {module: names - allowed for module, names in _imported_packages(service).items() if names - allowed}
    assert wrong == {}


def test_the_readme_layout_names_every_client_module():
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    block = re.search(r"^clients/(.*(?:\n {2,}.*)*)", layout, re.M)
    assert block, "clients/ is not in the Layout"
    named = set(re.findall(r"[a-z_-]+", block.group(1)))
    modules = [*(REPO / "clients" / "js" / "src").glob("*.js"), *(REPO / "clients" / "js" / "adapters").glob("*.js")]
    modules += [p for p in (REPO / "clients" / "python" / "silent_auth_client").glob("*.py") if p.stem != "__init__"]
    assert modules and [str(p.relative_to(REPO)) for p in modules if p.stem not in named] == []


def test_the_readme_layout_names_every_module():
    readme = (REPO / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    layout = layout[: layout.index("```", layout.index("```") + 3)]
    missing = []
    for package in PACKAGES:
        line_block = re.search(rf"^{package}/(.*(?:\n {{2,}}.*)*)", layout, re.M)
        assert line_block, f"{package}/ is not in the Layout"
        named = set(re.findall(r"[a-z_]+", line_block.group(1)))
        for path in (REPO / package).glob("*.py"):
            if path.stem not in named and path.stem != "__init__":
                missing.append(f"{package}/{path.name}")
    assert missing == []
