"""A product read in the style of nameko-examples, the second reference of the gateway benchmark.

Like nameko-examples' ``GET /products/<id>``: a ``products`` service reads one record from
Redis and dumps it through a marshmallow schema, and an ``@http`` gateway makes one RPC to it
and dumps the answer through the schema again. Each runs as a process of its own
(``nameko run bench.products:ProductsService``, ``...:ProductsGateway``).

Config: ``REDIS_URI`` and ``PRODUCTS_KEY_PREFIX`` (every key of one stack starts with it, so
several stacks share a Redis server and each removes only its own keys).
"""

from __future__ import annotations

import json
from typing import Any

import redis
from marshmallow import Schema, fields
from nameko.exceptions import RemoteError
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy, rpc
from nameko.web.handlers import http
from werkzeug.wrappers import Response

TITLES = ("轴承", "液压泵", "阀门", "电缆", "伺服电机", "减速机", "五金工具", "仪器仪表")


class ProductSchema(Schema):
    id = fields.Str(required=True)
    title = fields.Str(required=True)
    passenger_capacity = fields.Int(required=True)
    maximum_speed = fields.Int(required=True)
    in_stock = fields.Int(required=True)


class ProductNotFound(Exception):
    pass


def product_key(prefix: str, product_id: str) -> str:
    return f"{prefix}{product_id}"


def product_ids(count: int) -> list[str]:
    return [f"P{number:05d}" for number in range(1, count + 1)]


def seed(client: redis.Redis, prefix: str, count: int) -> list[str]:
    """Store ``count`` products as JSON strings under ``prefix``; their ids."""
    ids = product_ids(count)
    client.mset(
        {
            product_key(prefix, product_id): json.dumps(
                {
                    "id": product_id,
                    "title": f"{TITLES[number % len(TITLES)]} {product_id}",
                    "passenger_capacity": number % 12 + 1,
                    "maximum_speed": 100 + number % 900,
                    "in_stock": number * 7 % 500,
                },
                ensure_ascii=False,
            )
            for number, product_id in enumerate(ids)
        }
    )
    return ids


def remove(client: redis.Redis, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


class Storage(DependencyProvider):
    """One Redis client per service container; workers share its connection pool."""

    def setup(self) -> None:
        config = self.container.config
        self.client = redis.Redis.from_url(config["REDIS_URI"], decode_responses=True)
        self.prefix = config["PRODUCTS_KEY_PREFIX"]

    def stop(self) -> None:
        self.client.close()

    def get_dependency(self, worker_ctx: Any) -> Storage:
        return self

    def get(self, product_id: str) -> dict[str, Any]:
        found = self.client.get(product_key(self.prefix, product_id))
        if found is None:
            raise ProductNotFound(product_id)
        product: dict[str, Any] = json.loads(found)
        return product


class ProductsService:
    name = "products"
    storage = Storage()

    @rpc
    def get(self, product_id: str) -> dict[str, Any]:
        product: dict[str, Any] = ProductSchema().dump(self.storage.get(product_id))
        return product


class ProductsGateway:
    name = "products_gateway"
    products_rpc = RpcProxy("products")

    @http("GET", "/products/<string:product_id>")
    def get_product(self, request: Any, product_id: str) -> Response:
        try:
            product = self.products_rpc.get(product_id)
        except RemoteError as error:
            if error.exc_type == ProductNotFound.__name__:
                return Response(status=404)
            raise
        return Response(ProductSchema().dumps(product), mimetype="application/json")
