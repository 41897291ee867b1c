"""``python -m tools.sms_catcher``: the local SMS endpoint of ``make run`` (see the package)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tools.sms_catcher import SmsCatcher


def main() -> None:
    parser = argparse.ArgumentParser(description="Behave like the SMS providers, locally")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8026)
    parser.add_argument("--directory", type=Path, default=Path("var/sms"))
    parser.add_argument("--secret", action="append", default=[], metavar="PROVIDER=SECRET")
    args = parser.parse_args()
    secrets = dict(item.split("=", 1) for item in args.secret)
    catcher = SmsCatcher(
        host=args.host, port=args.port, directory=args.directory, secrets=secrets
    ).start()
    print(
        f"SMS catcher: {catcher.url}/webhook, /aliyun, /tencent; caught SMS at {catcher.url}/ "
        f"and in {args.directory}/sms.jsonl",
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
