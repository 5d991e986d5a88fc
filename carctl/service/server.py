"""The service tool as a process: `python -m carctl.service.server --config FILE` (started by the process table when
processes.service is on), or `carctl service --config FILE [--listen IP:PORT]` by hand beside a running `carctl run`.

Rules of this module:
- Everything that can be refused is refused before it listens, in one sentence naming the key or option: the
  configuration, the address (`service.listen` or `--listen`, in use or not this board's), the TLS files, the socket
  directory. `carctl service` exits 2; the process table's child exits 3 and is started again after its backoff.
- Once it listens it prints one JSON line, `{"url": …}`, on stdout (the port the system chose, with port 0).
- uvicorn, on one asyncio loop, pure Python (h11): request headers of at most MAX_HEADER_BYTES, at most
  MAX_CONNECTIONS at once (more get 503), idle keep-alive connections closed after KEEP_ALIVE_S, and a request's
  head due within 10 s (http_protocol.py: a client that opens connections and sends nothing cannot hold them); no
  access log (the audit trail records what matters), no server banner.
- At lower priority than the loop, always: the process table sets it (nice +10, off the loop's CPU); run by hand it
  lowers its own priority the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import sys
from pathlib import Path

from carctl.runtime.config import FirmwareConfig, FirmwareConfigError, listen_problem, load
from carctl.runtime.sidechannel import LOOP_PID_VARIABLE, SocketDirError, only_process, prepare_socket_dir, \
    same_user
from carctl.runtime.structlog import StructuredLog
from carctl.service.feed import LoopFeed

EXIT_BAD_INPUT = 2
EXIT_CHILD_CANNOT_START = 3
NICENESS = 10
MAX_HEADER_BYTES = 8 * 1024
MAX_CONNECTIONS = 32
KEEP_ALIVE_S = 5.0
BACKLOG = 16


class ServiceStartError(Exception):
    """The service cannot start; the message names the key or option and says why."""


def _bind(listen: str, key: str) -> socket.socket:
    problem = listen_problem(listen)
    if problem:
        raise ServiceStartError(f"{key}: {problem}")
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, int(port)))
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise ServiceStartError(f"{key}: cannot listen on {listen} ({error.strerror or error})") from None
    return sock


def _check_tls(config: FirmwareConfig) -> None:
    service = config.service
    if not service.tls_cert_file:
        return
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(service.tls_cert_file, service.tls_key_file)
    except ssl.SSLError as error:
        # OpenSSL's own words ("[SSL] PEM lib") do not say which file is wrong or what it should hold.
        raise ServiceStartError(f"service.tls_cert_file: {service.tls_cert_file} and its key "
                                f"{service.tls_key_file} cannot be used: they must be a PEM certificate and the PEM "
                                f"private key that matches it (OpenSSL: {error})") from None
    except OSError as error:
        raise ServiceStartError(f"service.tls_cert_file: {service.tls_cert_file} and its key "
                                f"{service.tls_key_file} cannot be used ({error.strerror or error})") from None


def _url(sock: socket.socket, tls: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}/"


def serve(config: FirmwareConfig, listen: str | None, loop_pid: int | None) -> None:
    """Listen, print the URL line, serve until SIGTERM or SIGINT. ServiceStartError before listening."""
    try:
        import uvicorn

        from carctl.service.app import ServiceSettings, ServiceState, build_app
        from carctl.service.audit import StructuredLogAudit
        from carctl.service.http_protocol import HEAD_DEADLINE_S, HeadDeadlineH11Protocol
    except ModuleNotFoundError as error:
        raise ServiceStartError(f"processes.service: the service tool's packages are not installed ({error.name} is "
                                f"missing): install the service extra (make venv-board, docs/deployment.md)") from None

    service = config.service
    _check_tls(config)
    try:
        socket_dir = prepare_socket_dir(Path(config.runtime.socket_dir))
    except SocketDirError as error:
        raise ServiceStartError(f"runtime.socket_dir: {error}") from None
    sock = _bind(listen if listen is not None else service.listen, "--listen" if listen is not None else
                 "service.listen")
    tls = bool(service.tls_cert_file)
    log = StructuredLog(sys.stderr)
    try:
        feed = LoopFeed(socket_dir, sender=same_user if loop_pid is None else only_process(lambda: loop_pid))
    except OSError as error:
        sock.close()
        raise ServiceStartError(f"runtime.socket_dir: cannot open the service tool's socket ({error})") from None
    settings = ServiceSettings(
        users_file=Path(service.users_file),
        fault_log=Path(config.runtime.fault_log) if config.runtime.fault_log else None,
        session_s=service.session_s, lockout_failures=service.lockout_failures, lockout_s=service.lockout_s,
        tls=tls, landings_m=tuple(config.controller.building.landings_m),
        fault_log_capacity=config.runtime.fault_log_capacity,
        car_name=config.platform.car if config.processes.platform else "", config=config)
    url = _url(sock, tls)

    def announce() -> None:
        print(json.dumps({"url": url}), flush=True)
        log.write("service", state="listening", url=url, tls=tls)

    app = build_app(ServiceState(settings, feed, StructuredLogAudit(log, feed.to_loop)), on_startup=announce)
    if tls:
        # A TLS connection reaches the HTTP protocol (and its head deadline and per-client share) only once its
        # handshake is done; until then asyncio holds it for its default 60 s. uvicorn gives no way to pass the
        # server's handshake timeout, and this process serves nothing else: its default here is the head's deadline.
        asyncio.constants.SSL_HANDSHAKE_TIMEOUT = HEAD_DEADLINE_S
    server = uvicorn.Server(uvicorn.Config(
        app, http=HeadDeadlineH11Protocol, ws="none", lifespan="on", loop="asyncio", log_level="warning",
        access_log=False, server_header=False, limit_concurrency=MAX_CONNECTIONS, timeout_keep_alive=int(KEEP_ALIVE_S),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES, timeout_graceful_shutdown=2,
        ssl_certfile=service.tls_cert_file or None, ssl_keyfile=service.tls_key_file or None))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
        feed.close()


def lower_priority() -> None:
    """Run by hand, as the process table would run it: below the loop (nice +10)."""
    try:
        current = os.nice(0)
        if current < NICENESS:
            os.nice(NICENESS - current)
    except OSError:
        pass


def run_standalone(config_path: Path, listen: str | None) -> int:
    """`carctl service --config FILE [--listen IP:PORT]`: exit 2 with one sentence for anything refused."""
    try:
        config = load(config_path)
    except FirmwareConfigError as error:
        print(f"carctl service: error: {error.key + ': ' if error.key else ''}{error.message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    lower_priority()
    try:
        serve(config, listen, None)
    except ServiceStartError as error:
        print(f"carctl service: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m carctl.service.server")
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args(argv)
    loop_pid = os.environ.get(LOOP_PID_VARIABLE, "")
    try:
        config = load(args.config)
        serve(config, None, int(loop_pid) if loop_pid.isdigit() else None)
    except (FirmwareConfigError, ServiceStartError) as error:
        print(f"service tool: not starting: {error}", file=sys.stderr)
        return EXIT_CHILD_CANNOT_START
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
