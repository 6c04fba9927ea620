"""Run the spend-limits app: python -m examples.spend_limits_app --token ml_... [options]."""

from __future__ import annotations

import argparse

from metronome import Metronome

from examples.spend_limits_app.app import WEBHOOK_PATH, SpendLimits, make_server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meterline-url", default="http://127.0.0.1:8080")
    parser.add_argument("--token", required=True, help="a meterline API token (meterline tokens create NAME)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--public-url", help="how meterline reaches this app [default: http://HOST:PORT]")
    args = parser.parse_args()

    app = SpendLimits(Metronome(bearer_token=args.token, base_url=args.meterline_url))
    server = make_server(app, args.host, args.port)
    public = args.public_url or f"http://{args.host}:{args.port}"
    endpoint_id = app.register(public.rstrip("/") + WEBHOOK_PATH)
    print(f"spend-limits app on {public}, meterline webhook endpoint {endpoint_id}")
    server.serve_forever()


if __name__ == "__main__":
    main()
