"""Git: the git command wrapper and the hidden dev repo's plumbing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from goldfish import lazy_face

if TYPE_CHECKING:
    from goldfish.git.cmd import GitError, git, git_ok, git_text, git_stream
    from goldfish.git.devrepo import DevRepo, RefJournal

__all__ = [
    "DevRepo",
    "GitError",
    "RefJournal",
    "git",
    "git_ok",
    "git_stream",
    "git_text",
]

__getattr__ = lazy_face(__name__, {
    "GitError": "cmd",
    "git": "cmd",
    "git_ok": "cmd",
    "git_text": "cmd",
    "git_stream": "cmd",
    "DevRepo": "devrepo",
    "RefJournal": "devrepo",
})
