"""``python -m tools.erp_simulator [publish|respond] --amqp-uri URI ...`` (see the package)."""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections import Counter
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pika.exceptions import AMQPError

from tools.erp_simulator import broker
from tools.erp_simulator.delivery import plan
from tools.erp_simulator.respond import Responder, Rules
from tools.erp_simulator.world import Stream, customers_from


def fraction(value: str) -> float:
    number = float(value)
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"{value} is not a fraction between 0 and 1")
    return number


def amount(value: str) -> Decimal:
    try:
        return Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{value} is not an amount") from None


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="python -m tools.erp_simulator",
        description="A simulated ERP: publishes a stream of ERP events, or answers the CRM's "
        "order requests (respond).",
    )
    root.add_argument(
        "mode", nargs="?", choices=("publish", "respond"), default="publish", help="publish"
    )
    root.add_argument("--amqp-uri", required=True, help="amqp://user:password@host:5672/vhost")
    stream = root.add_argument_group("publish")
    stream.add_argument("--events", type=int, default=1000, help="distinct events (1000)")
    stream.add_argument("--seed", type=int, default=1, help="the same seed, the same stream")
    stream.add_argument(
        "--duplicates", type=fraction, default=0.0, help="share of events published twice"
    )
    stream.add_argument(
        "--out-of-order",
        type=fraction,
        default=0.0,
        help="share of dependent events published before what they depend on",
    )
    stream.add_argument(
        "--customers",
        type=Path,
        help="JSON file: a list (or {'items': [...]}) of customers with crm_customer_id or id, "
        "and optionally erp_code, credit_code, name, category",
    )
    stream.add_argument(
        "--customer-id",
        action="append",
        default=[],
        help="a CRM customer id to order for (repeatable); without these and --customers "
        "the ERP's customers are made up and unknown to the CRM",
    )
    stream.add_argument(
        "--expected",
        type=Path,
        help="where to write what the stream implies (default: "
        "var/erp_simulator/expected-seed<S>.json)",
    )
    answers = root.add_argument_group("respond")
    answers.add_argument(
        "--reject-above", type=amount, help="refuse orders whose total is above this amount"
    )
    answers.add_argument(
        "--reject-item", action="append", default=[], help="refuse orders of this item code"
    )
    answers.add_argument(
        "--fulfil", action="store_true", help="ship and invoice each booked order at once"
    )
    answers.add_argument("--pay", action="store_true", help="with --fulfil: pay each invoice")
    answers.add_argument("--count", type=int, help="stop after this many requests")
    return root


def given_customers(args: argparse.Namespace) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    if args.customers:
        loaded = json.loads(args.customers.read_text(encoding="utf-8"))
        records += loaded["items"] if isinstance(loaded, dict) else loaded
    records += [{"crm_customer_id": customer_id} for customer_id in args.customer_id]
    return records


def run_publish(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    records = given_customers(args)
    stream = Stream(args.seed, customers_from(rng, records) if records else None)
    events = stream.events(args.events)
    delivery = plan(events, rng, duplicates=args.duplicates, out_of_order=args.out_of_order)
    started = time.monotonic()
    try:
        published = broker.publish_all(args.amqp_uri, (e.envelope for e in delivery.messages))
    except (broker.NotDelivered, AMQPError) as exc:
        print(f"The ERP stream stopped: {exc!r}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - started
    outcome = {
        "seed": args.seed,
        "events": len(events),
        "messages": published,
        "by_type": dict(sorted(Counter(event.type for event in events).items())),
        "duplicates": delivery.duplicates,
        "out_of_order": [list(pair) for pair in delivery.out_of_order],
        **stream.expected(),
    }
    path = args.expected or Path("var/erp_simulator") / f"expected-seed{args.seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(outcome, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(
        f"published {published} messages in {seconds:.1f} s ({published / seconds:.0f}/s): "
        f"{len(events)} events, {len(delivery.duplicates)} duplicates, "
        f"{len(delivery.out_of_order)} out of order; expected outcome in {path}"
    )
    return 0


def run_respond(args: argparse.Namespace) -> int:
    rules = Rules(
        reject_above=args.reject_above,
        reject_items=frozenset(args.reject_item),
        fulfil=args.fulfil,
        pay=args.pay,
    )
    handled = broker.respond(args.amqp_uri, Responder(rules), count=args.count)
    print(f"answered {handled} order requests")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("pika").setLevel(logging.WARNING)
    if args.pay and not args.fulfil:
        parser().error("--pay needs --fulfil: an invoice is paid once it is issued")
    return run_respond(args) if args.mode == "respond" else run_publish(args)


if __name__ == "__main__":
    sys.exit(main())
