"""Run the spend-limits app: python -m examples.spend_limits_app --token ml_... [options].

It finds meterline where `meterline serve` listens: METERLINE_HOST and METERLINE_PORT
(127.0.0.1 and 8080 when unset), unless --meterline-url names it.
"""

from __future__ import annotations

import argparse
import os
import sys

from metronome import APIConnectionError, Metronome

from examples.spend_limits_app.app import WEBHOOK_PATH, SpendLimits, make_server
from meterline.guard import AccessGuard


def default_meterline_url() -> str:
    host = os.environ.get("METERLINE_HOST") or "127.0.0.1"
    port = os.environ.get("METERLINE_PORT") or "8080"
    return f"http://{host}:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--meterline-url",
        default=default_meterline_url(),
        help="where meterline serves [default: http://METERLINE_HOST:METERLINE_PORT, else %(default)s]",
    )
    parser.add_argument("--token", required=True, help="a meterline API token (meterline tokens create NAME)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--public-url", help="how meterline reaches this app [default: http://HOST:PORT]")
    parser.add_argument(
        "--fail-policy",
        choices=["closed", "open"],
        default="closed",
        help="while meterline cannot be reached: deny every customer (closed) or allow every one (open)",
    )
    args = parser.parse_args()

    guard = AccessGuard(args.meterline_url, args.token, fail_policy=args.fail_policy, max_stale_s=30)
    app = SpendLimits(Metronome(bearer_token=args.token, base_url=args.meterline_url), guard)
    server = make_server(app, args.host, args.port)
    public = args.public_url or f"http://{args.host}:{args.port}"
    try:
        endpoint_id = app.register(public.rstrip("/") + WEBHOOK_PATH)
    except APIConnectionError:
        server.server_close()
        sys.exit(
            f"cannot reach meterline at {args.meterline_url}: start it (make serve), or point this app at"
            " it with --meterline-url or METERLINE_PORT"
        )
    guard.start()
    print(f"spend-limits app on {public}, meterline webhook endpoint {endpoint_id}", flush=True)
    try:
        server.serve_forever()
    finally:
        guard.stop()


if __name__ == "__main__":
    main()
