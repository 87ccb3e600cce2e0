"""The lock files agree with pyproject.toml, carry hashes, and a changed lock re-installs."""

from __future__ import annotations

import re
import subprocess
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from .support import ROOT, VENV

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", re.MULTILINE)


def _pins(name: str) -> dict[str, str]:
    text = (ROOT / name).read_text()
    return {canonicalize_name(n): v for n, v in PIN.findall(text)}


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _assert_locked(requirements: list[str], pins: dict[str, str], lock: str) -> None:
    for line in requirements:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is in pyproject.toml but not in {lock}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{lock} pins {name}=={pins[name]}, outside pyproject's {requirement.specifier}:"
            " run make lock"
        )


def test_runtime_lock_pins_every_dependency_within_its_range():
    _assert_locked(_project()["dependencies"], _pins("requirements.txt"), "requirements.txt")


def test_test_lock_pins_the_runtime_lock_and_the_test_extras():
    runtime, test = _pins("requirements.txt"), _pins("requirements-test.txt")
    assert {n: test.get(n) for n in runtime} == runtime  # same versions of what they share
    extras = _project()["optional-dependencies"]["test"]
    _assert_locked(extras, test, "requirements-test.txt")


def test_every_pin_carries_hashes():
    for name in ("requirements.txt", "requirements-test.txt"):
        entries = re.split(r"\n(?=[A-Za-z0-9])", (ROOT / name).read_text().split("\n", 2)[2])
        for entry in entries:
            if PIN.match(entry):
                assert "--hash=sha256:" in entry, f"{name}: no hash for {entry.splitlines()[0]}"


def _make_dry_run(*args: str) -> str:
    done = subprocess.run(
        ["make", "--dry-run", f"VENV={VENV}", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_changed_lock_reinstalls_from_it_with_hashes():
    # -W: as if the file had just changed.
    runtime = _make_dry_run("-W", "requirements.txt", "install-test")
    assert "pip install --quiet --require-hashes -r requirements.txt" in runtime
    assert "pip install --quiet --no-deps -e ." in runtime
    assert "pip install --quiet --require-hashes -r requirements-test.txt" in runtime
    test = _make_dry_run("-W", "requirements-test.txt", "install-test")
    assert "pip install --quiet --require-hashes -r requirements-test.txt" in test
