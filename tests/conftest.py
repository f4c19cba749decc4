"""Shared fixtures."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _no_global_git_identity(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Run every test as on a fresh machine: no global git config, no API keys."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig-none"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    for key in list(os.environ):
        if key.startswith("GOLDFISH_"):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))


@pytest.fixture
def python() -> str:
    return sys.executable


@pytest.fixture(autouse=True)
def _no_automatic_backups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Projects created in this process get `backups: {auto: false}` in goldfish.yaml: a background
    backup would write into the project while a test compares its files. Backup tests set it back."""
    import goldfish.config as config

    original = config.default_config_yaml

    def without_auto(project_name: str, dev_repo_path: str) -> str:
        return original(project_name, dev_repo_path).replace("backups:\n  auto: true", "backups:\n  auto: false", 1)

    monkeypatch.setattr(config, "default_config_yaml", without_auto)
