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
    parser.add_argument("--directory", type=Path, default=Path("var/mail"))
    args = parser.parse_args()
    catcher = MailCatcher(
        host=args.host, smtp_port=args.smtp_port, http_port=args.http_port, directory=args.directory
    ).start()
    print(
        f"mail catcher: SMTP on {args.host}:{catcher.smtp_port}, "
        f"caught mail at http://{args.host}:{catcher.http_port}/ and in {args.directory}/",
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
