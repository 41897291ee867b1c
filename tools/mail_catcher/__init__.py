"""A local SMTP server that keeps every message it is given (aiosmtpd), for ``make run`` and
the tests: nothing leaves the machine.

Messages are kept in memory and, with ``directory``, written there as ``.eml`` files (open
them with any mail client). With ``http_port`` a small web page lists them:
``GET /`` (HTML), ``GET /messages`` (JSON: from, to, subject, date, text), ``GET
/messages/<n>.eml`` (the raw message), ``DELETE /messages`` (forget them).

``python -m tools.mail_catcher --smtp-port 1025 --http-port 8025 --directory var/mail``
"""

from __future__ import annotations

import html
import json
import re
import socket
import ssl
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class CaughtMail:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    received_at: datetime

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed

    def part(self, subtype: str) -> str:
        """The decoded text of the ``text/<subtype>`` part ('' when there is none)."""
        body = self.message.get_body(preferencelist=(subtype,))
        if body is None:
            return ""
        content: str = body.get_content()
        return content

    def summary(self, number: int) -> dict[str, Any]:
        message = self.message
        return {
            "number": number,
            "from": str(message["From"]),
            "to": self.rcpt_tos,
            "subject": str(message["Subject"]),
            "date": self.received_at.isoformat(),
            "text": self.part("plain"),
        }


@dataclass
class _Handler:
    catcher: MailCatcher

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        return self.catcher._accept(envelope)


@dataclass
class MailCatcher:
    host: str = "127.0.0.1"
    smtp_port: int = 0
    http_port: int | None = None
    directory: Path | None = None
    reject_with: str | None = None
    """While set (e.g. ``"451 4.3.0 try later"``), every message is answered with it."""
    tls: ssl.SSLContext | None = None
    """With it, STARTTLS is offered (and required); with ``implicit_tls`` the whole
    connection is TLS (as on port 465)."""
    implicit_tls: bool = False
    credentials: tuple[str, str] | None = None
    """With them, AUTH PLAIN/LOGIN with this user name and password is required."""
    messages: list[CaughtMail] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.smtp_port:
            self.smtp_port = free_port(self.host)
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self._http: ThreadingHTTPServer | None = None

    def _accept(self, envelope: Envelope) -> str:
        if self.reject_with:
            return self.reject_with
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        caught = CaughtMail(
            mail_from=str(envelope.mail_from),
            rcpt_tos=list(envelope.rcpt_tos),
            raw=data,
            received_at=datetime.now(UTC),
        )
        with self._lock:
            self.messages.append(caught)
            number = len(self.messages)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            stamp = caught.received_at.strftime("%Y%m%dT%H%M%S")
            (self.directory / f"{stamp}-{number:05d}.eml").write_bytes(data)
        return "250 Message accepted for delivery"

    def start(self) -> MailCatcher:
        options: dict[str, Any] = {}
        if self.tls is not None and self.implicit_tls:
            options["ssl_context"] = self.tls
        elif self.tls is not None:
            options.update(tls_context=self.tls, require_starttls=True)
        if self.credentials is not None:
            options.update(
                authenticator=self._authenticate,
                auth_required=True,
                auth_require_tls=self.tls is not None,
            )
        self._controller = Controller(
            _Handler(self), hostname=self.host, port=self.smtp_port, decode_data=False, **options
        )
        self._controller.start()
        if self.http_port is not None:
            self._http = ThreadingHTTPServer((self.host, self.http_port), _listing(self))
            self.http_port = self._http.server_address[1]
            threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        expected = self.credentials
        given = (
            (data.login.decode(), data.password.decode())
            if isinstance(data, LoginPassword)
            else None
        )
        # handled=False: aiosmtpd answers a refusal itself (535)
        return AuthResult(success=expected is not None and given == expected, handled=False)

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> MailCatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()


def _listing(catcher: MailCatcher) -> type[BaseHTTPRequestHandler]:
    class Listing(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            messages = list(catcher.messages)
            raw = re.fullmatch(r"/messages/(\d+)\.eml", self.path)
            if raw and 1 <= int(raw.group(1)) <= len(messages):
                self._send(200, messages[int(raw.group(1)) - 1].raw, "message/rfc822")
            elif self.path == "/messages":
                listing = [mail.summary(n) for n, mail in enumerate(messages, 1)]
                body = json.dumps(listing, ensure_ascii=False).encode()
                self._send(200, body, "application/json; charset=utf-8")
            elif self.path == "/":
                rows = "".join(
                    f"<tr><td>{n}</td><td>{html.escape(str(m['date']))}</td>"
                    f"<td>{html.escape(', '.join(m['to']))}</td>"
                    f'<td><a href="/messages/{n}.eml">{html.escape(m["subject"])}</a></td></tr>'
                    for n, m in ((n, mail.summary(n)) for n, mail in enumerate(messages, 1))
                )
                page = (
                    '<!DOCTYPE html><meta charset="utf-8"><title>Caught email</title>'
                    f"<h1>Caught email ({len(messages)})</h1><table border=1 cellpadding=4>"
                    f"<tr><th>#</th><th>received</th><th>to</th><th>subject</th></tr>{rows}</table>"
                )
                self._send(200, page.encode(), "text/html; charset=utf-8")
            else:
                self._send(404, b"not found", "text/plain")

        def do_DELETE(self) -> None:
            if self.path == "/messages":
                catcher.clear()
                self._send(204, b"", "text/plain")
            else:
                self._send(404, b"not found", "text/plain")

    return Listing
