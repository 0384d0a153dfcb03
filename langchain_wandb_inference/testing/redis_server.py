"""A throw-away ``redis-server`` for tests, benchmarks and examples of fleet mode.

Loopback only, a free port, no persistence; it can be killed, restarted on the same
port (empty), or paused (a hung server)::

    with RedisServer() as server:
        llm = ChatWBInference(redis_url=server.url, ...)
        server.kill()    # SIGKILL mid-run
        server.start()   # back, same port, no data

Without ``redis-server`` on PATH, :class:`RedisServerMissing` says how to get it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

HINT = (
    "redis-server not found on PATH; install it (Debian/Ubuntu: "
    "`apt-get install -y redis-server`, macOS: `brew install redis`) to run fleet mode locally"
)


class RedisServerMissing(RuntimeError):
    """``redis-server`` is not installed (the message says how to get it)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(port: int, password: str | None) -> bool:
    """Whether the server answers PING (after AUTH, with a password)."""
    hello = (f"AUTH {password}\r\n" if password else "") + "PING\r\n"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.settimeout(0.2)
            s.sendall(hello.encode())
            reply = b""
            while b"PONG" not in reply and b"-" not in reply:
                chunk = s.recv(64)
                if not chunk:
                    break
                reply += chunk
            return b"+PONG" in reply
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` on 127.0.0.1 (``password``: ``requirepass``)."""

    def __init__(self, workdir: Path | None = None, password: str | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerMissing(HINT)
        self.binary = binary
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="wbinf-redis-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.password = password
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        """Whether the process is alive (it may be paused)."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start (or restart, same port, empty) and wait until it answers PING."""
        if self.running:
            return self
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"]
        if self.password:
            args += ["--requirepass", self.password]
        with open(self.workdir / "redis.log", "ab") as log:
            self.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while not _answers(self.port, self.password):
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: see {self.workdir / 'redis.log'}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer within {timeout}s")
            time.sleep(0.02)
        return self

    def kill(self) -> None:
        """SIGKILL: the server is lost abruptly (connections reset)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a paused server must die too
            self.proc.kill()
        self.proc.wait()
        self.proc = None

    def pause(self) -> None:
        """SIGSTOP: the server hangs (clients run into their timeouts)."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGCONT)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()
