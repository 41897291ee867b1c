"""``python -m tools.mail_catcher``: the local SMTP server of ``make run`` (see the package)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tools.mail_catcher import MailCatcher


def main() -> None:
    parser = argparse.ArgumentParser(description="Catch email locally (SMTP) and list it (HTTP)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, default=1025)
    parser.add_argument("--http-port", type=int, default=8025)
    parser.add_argument(
        "--directory", default="var/mail", help="where .eml files go ('' keeps them in memory)"
    )
    args = parser.parse_args()
    directory = Path(args.directory) if args.directory else None
    catcher = MailCatcher(
        host=args.host, smtp_port=args.smtp_port, http_port=args.http_port, directory=directory
    ).start()
    print(
        f"mail catcher: SMTP on {args.host}:{catcher.smtp_port}, "
        f"caught mail at http://{args.host}:{catcher.http_port}/"
        + (f" and in {directory}/" if directory else ""),
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
