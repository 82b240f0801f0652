"""Where readers are (#33): a workflow runs the README's test command on every push and pull request, another builds
the book with the README's book command and deploys it to GitHub Pages with the platform's own actions, and the
README names the published address that `_config.yml`'s repository implies. (`make lint` runs actionlint on both.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="the workflows are YAML; PyYAML comes with the book's requirements")

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _workflow(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _runs(job: dict) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def _uses(job: dict) -> list[str]:
    return [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]


def published_address() -> str:
    """GitHub Pages' address of the repository that `_config.yml` names (https://github.com/<owner>/<name>)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    owner, name = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)/?", config["repository"]["url"]).groups()
    return f"https://{owner.lower()}.github.io/{name}/"


def test_the_tests_run_on_every_push_and_pull_request():
    workflow = _workflow("test.yml")
    assert {"push", "pull_request"} <= set(workflow["on"])
    [job] = workflow["jobs"].values()
    assert "make test" in _runs(job), "the workflow runs the README's test command"
    assert workflow["permissions"] == {"contents": "read"}


def test_the_book_is_built_and_deployed_to_pages_from_main():
    workflow = _workflow("book.yml")
    assert workflow["on"]["push"]["branches"] == ["main"]
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    assert "make book" in _runs(build)
    assert "actions/upload-pages-artifact" in _uses(build) and "actions/configure-pages" in _uses(build)
    artifact = next(s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert artifact["with"]["path"] == "_build/html", "what `make book` builds is what is published"
    assert deploy["needs"] == "build" and _uses(deploy) == ["actions/deploy-pages"]
    assert deploy["environment"]["name"] == "github-pages"
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}


def test_the_readme_names_the_published_book():
    assert published_address() == "https://aecourse.github.io/aecourse/"
    assert published_address() in (ROOT / "README.md").read_text(encoding="utf-8")
