"""The ``batchyard`` command line.

Exit codes, for scripts: 0 success; 1 the operation failed (a job that did not succeed, a
refused request); 2 bad usage (unknown option, malformed argument); 3 the server could not be
reached or could not start.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from batchyard import __version__
from batchyard.config import DEFAULT_PORT, ConfigError, load_settings

EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3

app = typer.Typer(
    name="batchyard",
    help="AWS Batch, self-hosted: run the server, and drive it from the terminal.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
server_app = typer.Typer(
    help="Run the batchyard server (foreground by default, or --detach), or stop it.",
    invoke_without_command=True,
)
app.add_typer(server_app, name="server")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the database, logs and pid file live [default: ~/.batchyard].",
        envvar="BATCHYARD_DATA_DIR",
        show_envvar=True,
    ),
]
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="A TOML config file (keys as in docs/configuration.md).",
        envvar="BATCHYARD_CONFIG",
        show_envvar=True,
    ),
]


def fail(message: str, code: int = EXIT_FAILED) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(code)


@server_app.callback()
def server(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Address to listen on [default: 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help=f"Port to listen on (0: any free port) [default: {DEFAULT_PORT}]."),
    ] = None,
    data_dir: DataDir = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the store, e.g. postgresql+psycopg://user@host/db "
            "[default: SQLite in the data dir]."
        ),
    ] = None,
    config: ConfigFile = None,
    log_level: Annotated[
        str | None, typer.Option(help="critical, error, warning, info or debug.")
    ] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach", "-d", help="Run in the background; the pid file is <data dir>/server.pid."
        ),
    ] = False,
) -> None:
    """Run the server in the foreground (SIGTERM or Ctrl-C stops it cleanly)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"data_dir": data_dir, "config": config}
        return
    from batchyard import server as srv

    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            data_dir=data_dir,
            database_url=database_url,
            log_level=log_level,
        )
        if not detach:
            srv.serve(settings)
            return
        argv = ["--data-dir", str(settings.data_dir)]
        for flag, value in (
            ("--host", host),
            ("--port", port),
            ("--database-url", database_url),
            ("--config", config),
            ("--log-level", log_level),
        ):
            if value is not None:
                argv += [flag, str(value)]
        pid, endpoint = srv.detach(argv, settings.data_dir)
    except ConfigError as e:
        raise fail(str(e), EXIT_UNREACHABLE) from None
    typer.echo(f"batchyard server running in the background (pid {pid}) at {endpoint}")
    typer.echo(f"  log:  {settings.data_dir / srv.LOG_FILE}")
    typer.echo("  stop: batchyard server stop" + _data_dir_flag(data_dir, settings.data_dir))


def _data_dir_flag(given: Path | None, resolved: Path) -> str:
    return f" --data-dir {resolved}" if given is not None else ""


@server_app.command("stop")
def server_stop(ctx: typer.Context) -> None:
    """Stop the background server of the data dir (SIGTERM, then wait for it to exit)."""
    from batchyard import server as srv

    opts = ctx.obj or {}
    try:
        settings = load_settings(opts.get("config"), data_dir=opts.get("data_dir"))
        pid = srv.stop(settings.data_dir)
    except ConfigError as e:
        raise fail(str(e)) from None
    if pid is None:
        typer.echo(f"no batchyard server is running for {settings.data_dir}")
    else:
        typer.echo(f"stopped the batchyard server (pid {pid})")


@app.command()
def quickstart(
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Start a background server (if none is running) and set up a queue on this host."""
    from batchyard import server as srv
    from batchyard.cli.quickstart import ensure_queue

    try:
        settings = load_settings(config, data_dir=data_dir)
        endpoint = srv.read_endpoint(settings.data_dir)
        pid = srv.read_pid(settings.data_dir)
        if endpoint is None or pid is None or not srv.healthy(endpoint):
            argv = ["--data-dir", str(settings.data_dir)]
            if config is not None:
                argv += ["--config", str(config)]
            pid, endpoint = srv.detach(argv, settings.data_dir)
            typer.echo(f"started the batchyard server (pid {pid}) at {endpoint}")
        else:
            typer.echo(f"using the running batchyard server (pid {pid}) at {endpoint}")
        ensure_queue(endpoint)
    except ConfigError as e:
        raise fail(str(e), EXIT_UNREACHABLE) from None
    except Exception as e:  # a refused request or a timeout: say what happened, no traceback
        raise fail(str(e)) from None
    stop = "batchyard server stop" + _data_dir_flag(data_dir, settings.data_dir)
    typer.echo(
        "\nbatchyard is ready. Point any AWS Batch client at it, e.g.\n"
        f"  aws batch describe-job-queues --endpoint-url {endpoint}\n"
        f"  boto3.client('batch', endpoint_url='{endpoint}')\n"
        f"Stop the server with: {stop}"
    )


@app.command()
def version() -> None:
    """Print batchyard's version."""
    typer.echo(__version__)


def main() -> None:
    app()
