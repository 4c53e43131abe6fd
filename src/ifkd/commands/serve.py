"""`ifkd serve [--model RUN] [--device cpu] [--host 127.0.0.1] [--port 7860] [--share]`: the web app.

Needs the optional dependency gradio (``pip install 'ifkd[app]'``). Serves on this machine only
(127.0.0.1) by default; ``--host 0.0.0.0`` opens it to the network, ``--share`` asks gradio for a public
link (off by default: without it nothing reaches the internet).
Also runnable on its own: ``python -m ifkd.commands.serve --port 7861``.
"""

from __future__ import annotations

import argparse
import sys

from ifkd.io import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="web app: upload an image, get a mesh (needs gradio: pip install 'ifkd[app]')",
        description="Start a local web app (gradio) that turns an uploaded image into a mesh.",
    )
    add_arguments(p)
    p.set_defaults(func=cmd_serve, check_args=check_args)


add_parser = register  # the name some callers expect


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", default="pretrained", help="run folder, or 'pretrained' for the shipped weights (default)"
    )
    p.add_argument("--device", default="cpu", help="cpu (default) | auto | cuda[:N] | mps")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (7860)")
    p.add_argument(
        "--share",
        action="store_true",
        help="also make a public gradio.live link (reaches the internet; off by default)",
    )


def check_args(args: argparse.Namespace) -> None:
    if not 1 <= args.port <= 65535:
        raise InputError(f"--port {args.port}: must be between 1 and 65535")
    if not args.host.strip():
        raise InputError("--host: empty address (use 127.0.0.1, or 0.0.0.0 for every interface)")


def cmd_serve(args: argparse.Namespace) -> int:
    from ifkd.serve import import_gradio, serve

    check_args(args)  # also for callers that skip ifkd.cli.main
    import_gradio()  # a missing gradio is one line, before the model loads
    serve(args.model, args.device, host=args.host, port=args.port, share=args.share)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m ifkd.commands.serve ...``: the same command without the rest of the CLI."""
    from ifkd.cli import one_line, passive_openmp_waits

    passive_openmp_waits()
    parser = argparse.ArgumentParser(prog="ifkd serve", description="Start the image-to-mesh web app.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        check_args(args)
        from ifkd.device import resolve_device

        resolve_device(args.device)
        return cmd_serve(args)
    except (InputError, OSError) as exc:
        print(f"ifkd: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
