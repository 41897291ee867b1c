"""Sales routes: items (存货) and price lists (价格政策) mirrored from the ERP, and the price
pricing chooses for a customer."""

from __future__ import annotations

from gateway.table import Path, Query, Row

ITEM = Path("item_code")
CATALOG = ("items and prices",)
READ = "Needs opportunity:read. The ERP keeps items and price lists; they are read only here."

ROWS: tuple[Row, ...] = (
    Row(
        "GET",
        "/api/items",
        "list_items",
        (Query(),),
        summary="Search items by part of the code, name or spec (partial Chinese: 轴承)",
        description=READ,
        tags=CATALOG,
        shape="page",
        response="Item",
        query="ItemQuery",
    ),
    Row(
        "GET",
        "/api/items/<item_code>",
        "get_item",
        (ITEM,),
        summary="Get an item with the price-list lines valid today that price it",
        description=READ,
        tags=CATALOG,
        shape="object",
        response="Item",
    ),
    Row(
        "GET",
        "/api/items/<item_code>/price",
        "item_price",
        (ITEM, Query()),
        summary="The unit price pricing chooses for a customer's category, a quantity and a "
        "day: the price list first (category, quantity breaks, validity), else the list price",
        description=f"{READ} A customer outside the caller's scope is a 404; an item without "
        "any price is a 422.",
        tags=CATALOG,
        shape="object",
        response="ItemPrice",
        query="ItemPriceQuery",
    ),
    Row(
        "GET",
        "/api/price-lists",
        "list_price_lists",
        (Query(),),
        summary="Price lists, optionally only those valid on a day",
        description=READ,
        tags=CATALOG,
        shape="page",
        response="PriceList",
        query="PriceListQuery",
    ),
    Row(
        "GET",
        "/api/price-lists/<code>",
        "get_price_list",
        (Path("code"),),
        summary="Get a price list with its lines",
        description=READ,
        tags=CATALOG,
        shape="object",
        response="PriceList",
    ),
)
