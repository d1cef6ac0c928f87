"""Helpers to write a project directory for the config tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

Write = Callable[..., Path]

FLOW = """
from prefect import flow


@flow(name="etl-flow")
def etl(full_refresh: bool = False, **options: object) -> None:  # options: the tests' sample parameters
    pass


def plain_function() -> None:
    pass
"""


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """write({"wp.yaml": "..."}) -> the project directory (text dedented; flows/etl.py by default)."""

    def _write(files: dict[str, str], with_flow: bool = True) -> Path:
        all_files = {"flows/etl.py": FLOW, **files} if with_flow else files
        for name, text in all_files.items():
            path = tmp_path / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return tmp_path

    return _write
