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
from batchyard.cli import audit as _audit
from batchyard.cli import credentials as _credentials
from batchyard.cli import events as _events
from batchyard.cli import explain as _explain
from batchyard.cli import jobs as _jobs
from batchyard.cli import logs as _logs
from batchyard.cli import policy as _policy
from batchyard.cli import secrets as _secrets
from batchyard.cli import stacks as _stacks
from batchyard.cli import status as _status
from batchyard.cli import usage as _usage
from batchyard.cli import watch as _watch
from batchyard.cli.client import DEFAULT_PORT
from batchyard.cli.common import EXIT_CODES_HELP, EXIT_FAILED, EXIT_UNREACHABLE

app = typer.Typer(
    name="batchyard",
    help="AWS Batch, self-hosted: run the server, and drive it from the terminal.\n\n"
    "Client commands talk to the server at --endpoint, else $BATCHYARD_ENDPOINT, else the "
    "local server (~/.batchyard, or the config file's host and port). "
    "Start here: batchyard quickstart. Documentation: docs/cli.md.\n\n" + EXIT_CODES_HELP,
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
        help="Where the database, logs and pid file live (default: ~/.batchyard).",
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
        str | None, typer.Option(help="Address to listen on (default: 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help=f"Port to listen on (0: any free port) (default: {DEFAULT_PORT})."),
    ] = None,
    data_dir: DataDir = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the store, e.g. postgresql+psycopg://user@host/db "
            "(default: SQLite in the data dir)."
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
    auth: Annotated[
        str | None,
        typer.Option(
            help="required: every request signed with a batchyard access key and checked "
            "against its policies; off (default, loopback only): any signature or none. "
            "See docs/security.md."
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate (chain): serve HTTPS.")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    region: Annotated[
        str | None,
        typer.Option(
            help="The region of unsigned requests (default: us-east-1); a signed request acts "
            "in the region its client is configured for."
        ),
    ] = None,
    account_id: Annotated[
        str | None,
        typer.Option(help="The 12-digit account id in every ARN (default: 000000000000)."),
    ] = None,
) -> None:
    """Run the server in the foreground (SIGTERM or Ctrl-C stops it cleanly)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"data_dir": data_dir, "config": config}
        return
    from batchyard import server as srv
    from batchyard.cli.startup import client_setting, dashboard, port_in_use
    from batchyard.config import ConfigError, load_settings

    try:
        settings = load_settings(
            config,
            host=host,
            port=port,
            data_dir=data_dir,
            database_url=database_url,
            log_level=log_level,
            auth=auth,
            tls_cert=tls_cert,
            tls_key=tls_key,
            region=region,
            account_id=account_id,
        )
        taken = port_in_use(settings)
        if taken:
            raise ConfigError(taken)
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
            ("--auth", auth),
            ("--tls-cert", tls_cert),
            ("--tls-key", tls_key),
            ("--region", region),
            ("--account-id", account_id),
        ):
            if value is not None:
                argv += [flag, str(value)]
        pid, endpoint = srv.detach(argv, settings.data_dir)
    except ConfigError as e:
        raise fail(str(e), EXIT_UNREACHABLE) from None
    typer.echo(f"batchyard server running in the background (pid {pid}) at {endpoint}")
    typer.echo(f"  dashboard: {dashboard(endpoint)}")
    setting = client_setting(endpoint)
    if setting:
        typer.echo(f"  commands:  {setting}   (so that the other commands find it)")
    typer.echo(f"  log:       {settings.data_dir / srv.LOG_FILE}")
    typer.echo("  stop:      batchyard server stop" + _data_dir_flag(data_dir, settings.data_dir))


def _data_dir_flag(given: Path | None, resolved: Path) -> str:
    return f" --data-dir {resolved}" if given is not None else ""


@server_app.command("stop")
def server_stop(ctx: typer.Context, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Stop the background server of the data dir (SIGTERM, then wait for it to exit)."""
    from batchyard import server as srv
    from batchyard.config import ConfigError, load_settings

    opts = ctx.obj or {}
    data_dir = data_dir or opts.get("data_dir")
    config = config or opts.get("config")
    try:
        settings = load_settings(config, data_dir=data_dir)
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
    port: Annotated[
        int | None,
        typer.Option(
            help="Port for the server it starts (0: any free port; default: the config's, "
            f"else {DEFAULT_PORT})."
        ),
    ] = None,
    workload: Annotated[
        bool,
        typer.Option(
            "--workload/--no-workload",
            help="Run the example workload (an array job and a dependent merge).",
        ),
    ] = True,
) -> None:
    """Start a background server, set up a queue on this host, and run a real workload on it.

    The workload counts the Python standard library's source code in 8 shards (an array
    job), then merges the counts (a job that depends on the array) and prints the result.
    The server keeps running afterwards; `batchyard server stop` stops it. It ends with the
    dashboard's address, the BATCHYARD_ENDPOINT setting the other commands need when they
    would not find the server by themselves, and lines for the AWS CLI and boto3.
    """
    from batchyard import server as srv
    from batchyard.cli.common import out
    from batchyard.cli.quickstart import closing, ensure_queue, run_workload
    from batchyard.cli.startup import port_in_use
    from batchyard.config import ConfigError, load_settings

    code = 0
    try:
        settings = load_settings(config, data_dir=data_dir, port=port)
        endpoint = srv.read_endpoint(settings.data_dir)
        pid = srv.read_pid(settings.data_dir)
        if endpoint is None or pid is None or not srv.healthy(endpoint):
            taken = port_in_use(settings)
            if taken:
                raise ConfigError(taken)
            argv = ["--data-dir", str(settings.data_dir)]
            if config is not None:
                argv += ["--config", str(config)]
            if port is not None:
                argv += ["--port", str(port)]
            pid, endpoint = srv.detach(argv, settings.data_dir)
            typer.echo(f"started the batchyard server (pid {pid}) at {endpoint}")
        else:
            typer.echo(f"using the running batchyard server (pid {pid}) at {endpoint}")
        ensure_queue(endpoint)
        if workload:
            code = run_workload(endpoint, out, run_as=settings.run_as)
    except ConfigError as e:
        raise fail(str(e), EXIT_UNREACHABLE) from None
    except KeyboardInterrupt:
        raise fail("interrupted; the server and any submitted jobs keep running") from None
    except Exception as e:  # a refused request or a timeout: say what happened, no traceback
        raise fail(str(e)) from None
    stop = "batchyard server stop" + _data_dir_flag(data_dir, settings.data_dir)
    typer.echo("\n" + closing(endpoint, stop))
    if code:
        raise typer.Exit(code)


@app.command()
def version() -> None:
    """Print batchyard's version."""
    typer.echo(__version__)


_CLIENT = "Jobs"
_STACKS = "Stacks (infrastructure as code)"
_VIEW = "Look"
app.command("submit", rich_help_panel=_CLIENT, context_settings={"allow_interspersed_args": False})(
    _jobs.submit
)
app.command("jobs", rich_help_panel=_CLIENT)(_jobs.list_jobs)
app.command("describe", rich_help_panel=_CLIENT)(_jobs.describe)
app.command("logs", rich_help_panel=_CLIENT)(_logs.logs)
app.command("cancel", rich_help_panel=_CLIENT)(_jobs.cancel)
app.command("terminate", rich_help_panel=_CLIENT)(_jobs.terminate)
app.command("explain", rich_help_panel=_VIEW)(_explain.explain)
app.command("status", rich_help_panel=_VIEW)(_status.status)
app.command("watch", rich_help_panel=_VIEW)(_watch.watch)
app.command("events", rich_help_panel=_VIEW)(_events.events)
app.command("usage", rich_help_panel=_VIEW)(_usage.usage)
app.command("cost", rich_help_panel=_VIEW)(_usage.cost)
app.command("apply", rich_help_panel=_STACKS)(_stacks.apply)
app.command("diff", rich_help_panel=_STACKS)(_stacks.diff)
app.command("delete", rich_help_panel=_STACKS)(_stacks.delete)
app.add_typer(_credentials.app, name="credentials", rich_help_panel="Security")
app.add_typer(_policy.app, name="policy", rich_help_panel="Security")
app.add_typer(_secrets.app, name="secrets", rich_help_panel="Security")
app.command("audit", rich_help_panel="Security")(_audit.audit)


def main() -> None:
    """Run the command line; a usage error is one ``error:`` line (exit 2), as docs/cli.md
    says, not click's usage block and boxed panel."""
    import sys

    from batchyard.cli.common import ClickException, print_error, usage_message

    try:
        code = app(prog_name="batchyard", standalone_mode=False)
    except ClickException as e:
        if type(e).__name__ != "NoArgsIsHelpError":  # `batchyard` alone: the help was shown
            print_error(usage_message(e))
        code = e.exit_code  # type: ignore[attr-defined]
    except typer.Abort as e:
        if isinstance(e.__context__, KeyboardInterrupt):  # Ctrl-C, as docs/cli.md says
            print_error("interrupted")
            code = 130
        else:  # end of input at a confirmation prompt
            print_error("aborted")
            code = EXIT_FAILED
    sys.exit(code if isinstance(code, int) else 0)
