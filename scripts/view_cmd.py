"""``dialogforge view``: browse a database's trajectories in a local web page."""

from __future__ import annotations

import argparse

from dialogforge.cli.options import add_db


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {value}")
    return value


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "view", help="browse trajectories in the browser",
        description="Serve the trajectory viewer on 127.0.0.1 (this machine only); Ctrl-C stops it. "
                    "Example: dialogforge view --db run.db --port 8765",
    )
    add_db(parser)
    parser.add_argument("--port", type=port_number, default=8765, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--log", action="store_true", help="log each request to stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dialogforge.viewer.server import make_server

    server = make_server(args.db, args.port, log=args.log)
    print(f"dialogforge viewer: {server.url}  (database {args.db}; Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
