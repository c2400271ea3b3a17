"""Publishing a search: commit the results folder and push it to a git remote every N trials.

The results folder is its own git repository (``git init`` on first use, branch ``main``), so publishing
never touches the repository the code lives in. A push that fails (the network is down at 3 a.m.) is
reported and retried at the next publish; it never stops the search. Every git call has a time limit and
is waited for (no zombie ``git`` processes).

Example:
    >>> publisher = GitPublisher(Path("results"), remote="git@github.com:me/sweeps.git")  # doctest: +SKIP
    >>> publisher.publish("autoresearch: 10 trials")  # doctest: +SKIP
    'pushed a1b2c3d to git@github.com:me/sweeps.git (main)'
"""

from __future__ import annotations

import subprocess
from pathlib import Path

#: Never published: the lock, temporary files of atomic writes.
GITIGNORE = ".lock\n.*.tmp-*\n*.tmp\n"
IDENTITY = ("-c", "user.name=flywheel autoresearch", "-c", "user.email=autoresearch@flywheel.invalid")


class GitPublisher:
    """Commits ``folder`` and pushes it to ``remote`` (a URL or path; default: the folder's ``origin``).

    Args:
        folder: the results folder.
        remote: where to push; set as the folder repository's ``origin``.
        branch: the remote branch.
        timeout_s: time limit of each git command.
    """

    def __init__(self, folder: Path, *, remote: str | None = None, branch: str = "main",
                 timeout_s: float = 120.0) -> None:
        self.folder = Path(folder)
        self.remote = remote
        self.branch = branch
        self.timeout_s = timeout_s

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *IDENTITY, *args], cwd=self.folder, capture_output=True, text=True,
                              timeout=self.timeout_s, check=False, stdin=subprocess.DEVNULL)

    def _ensure_repo(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / ".git").exists():
            self._check(self._git("init", "-q", "-b", self.branch), "git init")
        ignore = self.folder / ".gitignore"
        if not ignore.exists():
            ignore.write_text(GITIGNORE)
        if self.remote:
            current = self._git("remote", "get-url", "origin")
            if current.returncode != 0:
                self._check(self._git("remote", "add", "origin", self.remote), "git remote add")
            elif current.stdout.strip() != self.remote:
                self._check(self._git("remote", "set-url", "origin", self.remote), "git remote set-url")

    @staticmethod
    def _check(result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            raise RuntimeError(f"{what} failed: {(result.stderr or result.stdout).strip()[-500:]}")

    def configured(self) -> bool:
        """Whether there is somewhere to push (``remote`` given, or the folder's repository has ``origin``)."""
        if self.remote:
            return True
        if not (self.folder / ".git").exists():
            return False
        return self._git("remote", "get-url", "origin").returncode == 0

    def publish(self, message: str) -> str:
        """Commit everything in the folder (if anything changed) and push; a one-line account of what happened.

        Raises nothing: a failure is described in the returned line (and retried at the next publish).
        """
        try:
            self._ensure_repo()
            self._check(self._git("add", "-A", "."), "git add")
            if self._git("diff", "--cached", "--quiet").returncode != 0:
                self._check(self._git("commit", "-q", "-m", message), "git commit")
            head = self._git("rev-parse", "--short", "HEAD")
            if head.returncode != 0:
                return "nothing to publish yet"
            if not self.configured():
                return f"committed {head.stdout.strip()} locally (no remote configured: not pushed)"
            self._check(self._git("push", "-q", "origin", f"HEAD:refs/heads/{self.branch}"), "git push")
            url = self._git("remote", "get-url", "origin").stdout.strip()
            return f"pushed {head.stdout.strip()} to {url} ({self.branch})"
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            return f"publishing failed (will retry): {exc}"
