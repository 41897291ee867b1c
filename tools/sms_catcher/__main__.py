"""``python -m tools.sms_catcher``: the local SMS endpoint of ``make run`` (see the package)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from tools.sms_catcher import SmsCatcher


def main() -> None:
    parser = argparse.ArgumentParser(description="Behave like the SMS providers, locally")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--directory", type=Path, default=Path("var/sms"))
    parser.add_argument("--secret", action="append", default=[], metavar="PROVIDER=SECRET")
    parser.add_argument(
        "--receipt-url",
        default=os.environ.get("SMS_CATCHER_RECEIPT_URL") or None,
        help="notify's receipt route to report each SMS to, e.g. "
        "http://localhost:8000/api/alerts/sms-receipts (default: $SMS_CATCHER_RECEIPT_URL)",
    )
    parser.add_argument(
        "--receipt-token",
        default=os.environ.get("SMS_RECEIPT_TOKEN") or None,
        help="sent as X-Receipt-Token (default: $SMS_RECEIPT_TOKEN)",
    )
    args = parser.parse_args()
    secrets = dict(item.split("=", 1) for item in args.secret)
    catcher = SmsCatcher(
        host=args.host,
        port=args.port,
        directory=args.directory,
        secrets=secrets,
        receipt_url=args.receipt_url,
        receipt_token=args.receipt_token,
    ).start()
    reporting = f"; receipts to {args.receipt_url}" if args.receipt_url else ""
    print(
        f"SMS catcher: {catcher.url}/webhook, /aliyun, /tencent; caught SMS at {catcher.url}/ "
        f"and in {args.directory}/sms.jsonl{reporting}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        catcher.stop()


if __name__ == "__main__":
    main()
