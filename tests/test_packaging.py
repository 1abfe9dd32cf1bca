"""The licence ships: a LICENSE file that matches pyproject's licence, in the sdist and the wheel.
So does ``py.typed``, the PEP 561 marker that tells type checkers the package is typed."""

from __future__ import annotations

import sys
import tarfile
import zipfile
from importlib import resources
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    path = ROOT / "pyproject.toml"
    if not path.is_file():
        pytest.skip("no pyproject.toml (an installed copy of the tests)")
    return tomllib.loads(path.read_text())


def test_license_file_matches_pyproject(pyproject):
    project = pyproject["project"]
    assert project["license"] == "BSD-3-Clause"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License\n")
    assert "Copyright (c) 2026, softmax_xp developers" in text
    assert "Neither the name of the copyright holder" in text  # the third clause
    assert "LICENSE" in pyproject["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]


def test_sdist_and_wheel_contain_the_license_and_py_typed(pyproject, tmp_path):
    pytest.importorskip("hatchling")
    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    (wheel,) = WheelBuilder(str(ROOT)).build(directory=str(tmp_path))
    (sdist,) = SdistBuilder(str(ROOT)).build(directory=str(tmp_path))
    stem = f"softmax_xp-{pyproject['project']['version']}"
    with zipfile.ZipFile(wheel) as archive:
        assert f"{stem}.dist-info/licenses/LICENSE" in archive.namelist()
        assert "softmax_xp/py.typed" in archive.namelist()
        metadata = archive.read(f"{stem}.dist-info/METADATA").decode()
    assert "License-Expression: BSD-3-Clause" in metadata
    with tarfile.open(sdist) as archive:
        assert f"{stem}/LICENSE" in archive.getnames()
        assert f"{stem}/softmax_xp/py.typed" in archive.getnames()


def test_installed_package_is_marked_typed():
    marker = resources.files("softmax_xp").joinpath("py.typed")
    assert marker.is_file()
    assert marker.read_bytes() == b""
