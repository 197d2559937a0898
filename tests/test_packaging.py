"""Every package under services/ is listed in pyproject, or a regular install would miss it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_services_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    services = ROOT / "services"
    found = {
        ".".join(("meshguard", *init.parent.relative_to(services).parts))
        for init in services.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages"
    assert listed - found == set(), "listed packages that do not exist"


def test_regular_install_carries_every_data_file(tmp_path: Path) -> None:
    """Build the wheel as ``pip install .`` would and check no file under services/ is lost."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("meshguard-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())
    services = ROOT / "services"
    expected = {
        "meshguard/" + str(path.relative_to(services))
        for path in services.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".md"
    }
    assert expected - shipped == set(), "add these to [tool.setuptools.package-data]"
