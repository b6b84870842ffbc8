"""A RabbitMQ node and a PostgreSQL cluster of a test's own, to kill with SIGKILL and start
again on the same data directory and ports — never the shared servers (5432, 5672).

Both run as child processes of the test on free ports chosen at run time and are stopped
by ``close()`` (call it in a ``finally`` or a fixture), whatever state they are in.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from kombu import Connection

from tests.tcpproxy import free_port

# The server script itself (Debian's /usr/sbin/rabbitmq-server is a wrapper that switches
# to the rabbitmq user and redirects the output).
RABBITMQ_SERVER = next(
    (p for p in ("/usr/lib/rabbitmq/bin/rabbitmq-server", "/opt/rabbitmq/sbin/rabbitmq-server")
     if Path(p).exists()),
    shutil.which("rabbitmq-server") or "rabbitmq-server",
)


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from /proc)."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        # "pid (comm) state ppid …": comm may hold spaces or parentheses.
        fields = text[text.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (dead, not yet reaped) is not alive for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


class OwnRabbitMQ:
    """A RabbitMQ node: its own node name, AMQP and distribution ports, data and log
    directories; no plugins (so no management port). Runs in the foreground under the
    server script, whose child ``beam.smp`` is the server process."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.node = f"fgdtest-{uuid.uuid4().hex[:8]}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        (root / "rabbitmq.conf").write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "log.console = true\nlog.console.level = warning\nlog.file.level = info\n"
        )
        (root / "rabbitmq-env.conf").write_text("")  # not the system's (its node name, port)
        (root / "enabled_plugins").write_text("[].\n")
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_"))}
        return {
            **env,
            "HOME": str(self.root),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": str(self.root / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.root / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.root / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.root / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.root / "log"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(self.root / "plugins-expand"),
        }

    def start(self, timeout: float = 120.0) -> OwnRabbitMQ:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        log = (self.root / f"server-{self.starts}.log").open("wb")
        self.starts += 1
        self.proc = subprocess.Popen(
            [RABBITMQ_SERVER], env=self._env(), cwd=self.root, stdout=log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"RabbitMQ exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"RabbitMQ not ready:\n{self.log()}"
            # The AMQP listener opens last in the boot: an AMQP handshake means ready.
            if _port_open(self.port):
                try:
                    with Connection(self.url, connect_timeout=2) as conn:
                        conn.ensure_connection(max_retries=1)
                        conn.default_channel.basic_qos(0, 1, False)
                    return self
                except Exception:  # noqa: BLE001 — booting: try again
                    pass
            time.sleep(0.2)

    def beam_pid(self) -> int:
        """The Erlang VM running the node (the server process)."""
        assert self.proc is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            beams = [p for p in _children(self.proc.pid) if _comm(p).startswith("beam")]
            if beams:
                return beams[0]
            time.sleep(0.05)
        raise AssertionError("no beam.smp under the RabbitMQ script")

    def kill9(self) -> None:
        """SIGKILL the server process; the script and the VM's helpers end with it."""
        assert self.proc is not None
        beam = self.beam_pid()
        helpers = _children(beam)
        os.kill(beam, signal.SIGKILL)
        self.proc.wait(30)  # the script waits for the VM, then exits
        for pid in _wait_gone(helpers, 10):  # erl_child_setup & co. follow their VM
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # The node name leaves epmd when the VM's connection to it closes.
        deadline = time.monotonic() + 15
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # the script stops the node
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # anything left of its session
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)

    def log(self) -> str:
        logs = sorted(self.root.glob("server-*.log"))
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in logs)


def _postgres_bindir() -> Path:
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if versions:
        return Path(versions[-1])
    found = shutil.which("initdb")
    assert found, "no PostgreSQL server binaries (initdb, pg_ctl)"
    return Path(found).parent


class OwnPostgres:
    """A PostgreSQL cluster: its own data directory and port, trust authentication for the
    user ``fgd`` on 127.0.0.1, a Unix socket in the data directory.

    PostgreSQL refuses to run as root; as root (as this project's CI is) the cluster belongs
    to the ``postgres`` user, like the shared one, and lives in a directory of its own in
    the system temp directory (pytest's base temp is private to root)."""

    def __init__(self, root: Path) -> None:
        self.bindir = _postgres_bindir()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            self.home = Path(tempfile.mkdtemp(prefix="fgd-test-pg-"))
            shutil.chown(self.home, "postgres", "postgres")
        else:
            self.home = root
            root.mkdir(parents=True, exist_ok=True)
        self.data = self.home / "data"
        self.port = free_port()
        self.url = f"postgresql://fgd@127.0.0.1:{self.port}/postgres"
        self.log_path = self.home / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._run("initdb", "-D", str(self.data), "-U", "fgd", "--auth=trust", "-E", "UTF8",
                  "--no-sync")

    def _run(self, tool: str, *args: str, timeout: float = 120) -> None:
        user = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        done = subprocess.run([*user, str(self.bindir / tool), *args], capture_output=True,
                              timeout=timeout, cwd=self.home)
        assert done.returncode == 0, (tool, done.stdout.decode(), done.stderr.decode(),
                                      self.log())

    def start(self, timeout: float = 60.0) -> OwnPostgres:
        """Run the server in the foreground, a child of this process (so that a killed
        postmaster is reaped at once and a restart does not find it still "running")."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        user = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*user, str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-k", str(self.data), "-c", "listen_addresses=127.0.0.1",
             "-c", "max_connections=200"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.home,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while True:  # ready once it answers on TCP (after crash recovery, if any)
            assert self.proc.poll() is None, f"PostgreSQL exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"PostgreSQL not ready:\n{self.log()}"
            try:
                with psycopg.connect(self.url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return self
            except psycopg.OperationalError:
                time.sleep(0.1)

    def postmaster_pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def kill9(self) -> None:
        """SIGKILL the postmaster (the server process). Its backends notice their parent's
        death and exit; a new postmaster refuses the data directory while any is left."""
        postmaster = self.postmaster_pid()
        backends = _children(postmaster)
        os.kill(postmaster, signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)  # runuser (or we) reaped it
        left = _wait_gone(backends, 20)
        assert not left, f"backends outlived the postmaster: {left}"

    def close(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                with contextlib.suppress(OSError, ValueError):  # gone, or no pid file yet
                    os.kill(self.postmaster_pid(), signal.SIGQUIT)  # immediate shutdown
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait(10)
        finally:
            if self.as_root:
                shutil.rmtree(self.home, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""
