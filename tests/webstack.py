"""A real nginx + PHP-FPM on 127.0.0.1 serving a deploy root's docroot link, for the tests.

Both run as root-started masters with their own config, pid, log and socket files in a test
folder; workers run as www-data (nginx needs `user www-data;` to reach the FPM socket, which
the pool hands to www-data). nginx passes `.php` to FPM with `$realpath_root`, exactly as
docs/web-server.md tells users to.
"""

from __future__ import annotations

import glob
import http.client
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.proc import _port_free, run, stop_process, tail
from support.sshd import _die_with_parent

WEB_USER = "www-data"
NGINX = "/usr/sbin/nginx"
FIRST_PORT = 28080


def find_php_fpm() -> str:
    """Debian's versioned php-fpm binary (php-fpm8.2 on Debian 12), the newest if several."""
    found = glob.glob("/usr/sbin/php-fpm[0-9]*") + glob.glob("/usr/sbin/php-fpm")

    def version(path: str) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", Path(path).name)) or (0,)

    if not found:
        raise AssertionError("no /usr/sbin/php-fpm*: run `bash scripts/test-env.sh` first")
    return max(found, key=version)


@dataclass
class WebStack:
    """A running nginx + PHP-FPM; `stop()` is idempotent."""

    workdir: Path
    port: int
    docroot: Path  # what nginx's `root` names: <deploy root>/htdocs (a link)
    validate_timestamps: bool
    fpm: subprocess.Popen[bytes] = field(repr=False)
    nginx: subprocess.Popen[bytes] = field(repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        """(status, body) of one GET on a fresh connection."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read().decode(errors="replace")
        finally:
            conn.close()

    def logs(self) -> str:
        parts = []
        for name in ("fpm.log", "nginx-error.log"):
            path = self.workdir / name
            if path.exists():
                parts.append(f"--- {name}\n{tail(path.read_text(errors='replace'), 30)}")
        return "\n".join(parts)

    def stop(self) -> None:
        stop_process(self.nginx, 5)
        stop_process(self.fpm, 5)


def _fpm_config(workdir: Path, socket: Path) -> str:
    return (
        "[global]\n"
        f"pid = {workdir / 'fpm.pid'}\n"
        f"error_log = {workdir / 'fpm.log'}\n"
        "daemonize = no\n"
        "[site]\n"
        f"user = {WEB_USER}\n"
        f"group = {WEB_USER}\n"
        f"listen = {socket}\n"
        f"listen.owner = {WEB_USER}\n"
        f"listen.group = {WEB_USER}\n"
        "listen.mode = 0660\n"
        "pm = static\n"
        "pm.max_children = 6\n"
        "catch_workers_output = yes\n"
        "clear_env = yes\n"
    )


def _nginx_config(workdir: Path, port: int, docroot: Path, socket: Path, extra: str = "") -> str:
    temp = workdir / "nginx-tmp"
    return f"""
user {WEB_USER};
worker_processes 1;
daemon off;
pid {workdir / "nginx.pid"};
error_log {workdir / "nginx-error.log"} warn;
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port};
        root {docroot};
        index index.php;
        {extra}
        location ~ \\.php$ {{
            try_files $uri =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $realpath_root$fastcgi_script_name;
            fastcgi_param DOCUMENT_ROOT $realpath_root;
            fastcgi_pass unix:{socket};
        }}
    }}
}}
"""


def _wait_for(check, what: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    text = log.read_text(errors="replace") if log.exists() else ""
    raise AssertionError(f"{what} did not come up within {timeout}s:\n{tail(text)}")


def _make_traversable(path: Path) -> None:
    """Let www-data reach `path`: o+x on every parent folder (read stays as it is)."""
    for parent in [*reversed(path.parents)]:
        if parent == Path("/") or not parent.exists():
            continue
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod((mode & 0o7777) | 0o001)


def start_webstack(
    workdir: Path,
    docroot: Path,
    *,
    validate_timestamps: bool = True,
    timeout: float = 10,
    extra: str = "",
) -> WebStack:
    """Start PHP-FPM (OPcache on) and nginx serving `docroot` on a free 127.0.0.1 port;
    `extra` goes into the server block (e.g. a snippet from the docs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    (workdir / "nginx-tmp").mkdir(exist_ok=True)
    _make_traversable(docroot)
    socket = workdir / "fpm.sock"
    (workdir / "fpm.conf").write_text(_fpm_config(workdir, socket))
    ini = ["opcache.enable=1", f"opcache.validate_timestamps={int(validate_timestamps)}"]
    fpm_argv = [find_php_fpm(), "--nodaemonize", "--fpm-config", str(workdir / "fpm.conf")]
    for setting in ini:
        fpm_argv += ["-d", setting]
    fpm = subprocess.Popen(fpm_argv, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
    nginx = None
    try:
        _wait_for(socket.exists, "php-fpm", fpm, workdir / "fpm.log", timeout)
        port = FIRST_PORT
        for _attempt in range(50):  # bounded: ports taken by others are skipped
            while not _port_free(port):
                port += 1
            conf = workdir / "nginx.conf"
            conf.write_text(_nginx_config(workdir, port, docroot, socket, extra))
            run([NGINX, "-t", "-q", "-c", str(conf), "-e", str(workdir / "nginx-error.log")])
            nginx = subprocess.Popen(
                [NGINX, "-c", str(conf), "-e", str(workdir / "nginx-error.log")],
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            log = workdir / "nginx-error.log"
            _wait_for(
                lambda p=port, n=nginx: not _port_free(p) or n.poll() is not None,
                "nginx", nginx, log, timeout,
            )  # fmt: skip
            if nginx.poll() is None:
                break
            port += 1  # lost a race for the port
        else:
            raise AssertionError("could not start nginx on any port")
        return WebStack(workdir, port, docroot, validate_timestamps, fpm, nginx)
    except BaseException:
        if nginx is not None:
            stop_process(nginx, 5)
        stop_process(fpm, 5)
        raise


def check_machine() -> None:
    """Fail (not skip) when the web stack can't run here."""
    missing = [p for p in (NGINX,) if not os.path.exists(p)]
    if missing or shutil.which("curl") is None:
        raise AssertionError(
            f"missing {missing or 'curl'}: run `bash scripts/test-env.sh` first"
        )
    find_php_fpm()
