"""The example site: a git repo made to be deployed."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .proc import run

SITE_FILES: dict[str, str] = {
    "htdocs/index.php": (
        "<?php\n"
        "// Prints which release is live: the deploy must switch htdocs and VERSION together.\n"
        'echo "release " . trim(file_get_contents(__DIR__ . "/../VERSION")) . "\\n";\n'
    ),
    "htdocs/assets/app.css": "body { font-family: sans-serif; color: #222; }\n",
    "config/general.php": "<?php\nreturn ['site' => 'example', 'debug' => false];\n",
    "storage/.gitkeep": "",
    "content/seed.txt": "seed content: copied into shared/ by the first deploy only\n",
    "VERSION": "1\n",
}


GIT_AUTHOR = ("-c", "user.name=Atomic Deploy Tests", "-c", "user.email=tests@atomic-deploy.invalid")


@dataclass
class SiteRepo:
    """A git checkout of the example PHP site, made to be deployed."""

    path: Path

    def git(self, *args: str) -> str:
        # Hermetic: neither the machine's nor root's git config can change hashes or sign.
        env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}
        return run(["git", *GIT_AUTHOR, "-C", str(self.path), *args], env=env).stdout.strip()

    @classmethod
    def create(cls, path: Path, files: dict[str, str] | None = None) -> SiteRepo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path)
        repo.git("init", "-q", "-b", "main")
        repo.commit(SITE_FILES if files is None else files, "example site")
        return repo

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def sha_short(self, length: int = 12) -> str:
        """HEAD cut to `length` hex digits; 12 = the release dir names (release_name.SHA_LENGTH).

        Deliberately not `git rev-parse --short`, whose length grows with the repo.
        """
        return self.head()[:length]

    def commit(self, files: dict[str, str | None], message: str = "change") -> str:
        """Write (or, for None, delete) files, commit them all, and return the new full sha."""
        for rel, content in files.items():
            target = self.path / rel
            if content is None:
                target.unlink(missing_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", message)
        return self.head()
