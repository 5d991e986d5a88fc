"""`carctl service`: run the technician's service tool, or manage its accounts.

    carctl service --config FILE [--listen IP:PORT]
    carctl service add-user NAME --role read|maintenance --password-file FILE [--config FILE | --users FILE]

Bad input exits 2 with one sentence naming the option or the key, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_BAD_INPUT = 2
DEFAULT_CONFIG = Path("/etc/carctl/board.toml")


def add_parser(commands: argparse._SubParsersAction, parser_class: type) -> None:  # type: ignore[type-arg]
    service = commands.add_parser("service", help="the technician's service tool: a web page served by the board")
    service.add_argument("--config", type=Path, help="firmware configuration (TOML): its [service] table")
    service.add_argument("--listen", metavar="IP:PORT", help="listen here instead of service.listen (port 0: the "
                                                             "system chooses; the URL is printed as one JSON line)")
    actions = service.add_subparsers(dest="service_action", parser_class=parser_class)
    add_user = actions.add_parser("add-user", help="add a technician's account, or change its role and password")
    add_user.add_argument("name", help="1-32 of a-z, 0-9, '_', '.' and '-'")
    add_user.add_argument("--role", required=True, choices=("read", "maintenance"))
    add_user.add_argument("--password-file", type=Path, required=True,
                          help="a file holding the password (at least 10 characters); never on the command line")
    where = add_user.add_mutually_exclusive_group()
    where.add_argument("--config", dest="user_config", type=Path,
                       help=f"the configuration whose service.users_file to write (default: {DEFAULT_CONFIG})")
    where.add_argument("--users", type=Path, help="the users file itself")


def run(args: argparse.Namespace) -> int:
    if args.service_action == "add-user":
        return _add_user(args)
    if args.config is None:
        return _fail("--config is required to run the service tool")
    from carctl.service.server import run_standalone

    return run_standalone(args.config, args.listen)


def _add_user(args: argparse.Namespace) -> int:
    from carctl.runtime.config import FirmwareConfigError, load
    from carctl.service.accounts import AccountError, add_user, read_password_file

    users = args.users
    if users is None:
        try:
            users = Path(load(args.user_config or args.config or DEFAULT_CONFIG).service.users_file)
        except FirmwareConfigError as error:
            return _fail(f"{error.key + ': ' if error.key else ''}{error.message}")
    try:
        password = read_password_file(args.password_file)
        new = add_user(users, args.name, args.role, password)
    except AccountError as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"users file {users}: {error.strerror or error}")
    print(f"{'added' if new else 'changed'} {args.name} ({args.role}) in {users}")
    return EXIT_OK


def _fail(message: str) -> int:
    print(f"carctl service: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT
