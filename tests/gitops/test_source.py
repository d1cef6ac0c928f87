"""GitSource's handling of remotes: which URLs are taken as given, how an HTTPS token travels, and that it never
shows up in an error or on disk."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from reconciler.errors import GitFetchError
from reconciler.gitops.source import GitSource, _git_env, remote_url


def test_urls_are_kept_and_local_paths_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert remote_url("https://git.example.org/acme/pools.git") == "https://git.example.org/acme/pools.git"
    assert remote_url("git@git.example.org:acme/pools.git") == "git@git.example.org:acme/pools.git"
    assert (
        remote_url("ssh://git@git.example.org/acme/pools.git") == "ssh://git@git.example.org/acme/pools.git"
    )
    monkeypatch.chdir(tmp_path)
    assert remote_url("pools.git") == str(tmp_path / "pools.git")


def test_an_https_token_is_a_header_in_gits_environment_only() -> None:
    env = _git_env("https://git.example.org/acme/pools.git", {"WP_SYNC_GIT_TOKEN": "s3cr3t"})
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
    scheme, encoded = env["GIT_CONFIG_VALUE_0"].removeprefix("Authorization: ").split(" ")
    assert scheme == "Basic" and base64.b64decode(encoded) == b"x-access-token:s3cr3t"
    # never sent to other hosts' schemes (a local path, ssh)
    assert "GIT_CONFIG_COUNT" not in _git_env("/srv/pools.git", {"WP_SYNC_GIT_TOKEN": "s3cr3t"})


def test_a_failed_https_fetch_names_the_url_and_masks_the_token(tmp_path: Path) -> None:
    # port 9 on loopback: nothing listens, git fails at once without leaving this machine
    url = "https://127.0.0.1:9/acme/pools.git"
    source = GitSource(url, "main", tmp_path / "cache", {"WP_SYNC_GIT_TOKEN": "s3cr3t"})
    with pytest.raises(GitFetchError) as raised, source.checkout():
        pass
    assert url in raised.value.message and "s3cr3t" not in raised.value.message
    config = (source.directory / ".git" / "config").read_text()
    assert "s3cr3t" not in config and "extraHeader" not in config
