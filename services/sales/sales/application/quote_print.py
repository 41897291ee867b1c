"""A quotation as a salesperson sends it: an HTML page (``sales/templates/quote.html``) or a
PDF, both from the quote as the API shows it, with Chinese labels, the company header from
config, the lines, the totals in figures and in 人民币大写, the validity and the terms.

The PDF is drawn with ReportLab in its built-in CID font STSong-Light: the file names the font
and the reader supplies its glyphs (every common PDF reader carries the Adobe Song font), so no
font file ships with the service.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from string import Template
from typing import Any

from sales.domain.money import format_amount
from sales.domain.quotes import rmb_upper

CJK_FONT = "STSong-Light"
HEADERS = (
    "行号",
    "存货编码",
    "存货名称",
    "规格型号",
    "单位",
    "数量",
    "单价",
    "折扣额",
    "税率",
    "不含税金额",
    "税额",
    "价税合计",
)


@dataclass(frozen=True)
class PrintedQuote:
    quote: dict[str, Any]
    company: dict[str, str]
    contact: str | None
    owner: str | None


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _rate(value: str) -> str:
    return f"{(Decimal(value) * 100).normalize():f}%"


def _quantity(value: str) -> str:
    return f"{Decimal(value).normalize():f}"


def _discount(values: dict[str, Any]) -> str:
    return format_amount(Decimal(values["line_discount"]) + Decimal(values["document_discount"]))


def line_cells(line: dict[str, Any]) -> list[str]:
    """One line's cells under ``HEADERS``, as plain text."""
    return [
        str(line["line_no"]),
        line["item_code"],
        line["item_name"],
        line.get("spec") or "",
        line.get("unit") or "",
        _quantity(line["quantity"]),
        line["unit_price"],
        _discount(line),
        _rate(line["tax_rate"]),
        line["net"],
        line["tax"],
        line["gross"],
    ]


def amount_in_words(quote: dict[str, Any]) -> str:
    return rmb_upper(Decimal(quote["gross"])) if quote["currency"] == "CNY" else ""


def totals(quote: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("金额", quote["amount"]),
        ("折扣", _discount(quote)),
        ("不含税合计", quote["net"]),
        ("税额合计", quote["tax"]),
        ("价税合计", quote["gross"]),
        ("大写", amount_in_words(quote)),
    ]


def render_html(printed: PrintedQuote) -> str:
    quote, company = printed.quote, printed.company
    template = Template(
        resources.files("sales").joinpath("templates/quote.html").read_text(encoding="utf-8")
    )
    numeric = {5, 6, 7, 8, 9, 10, 11}
    lines = "\n".join(
        "<tr>"
        + "".join(
            f"<td class='n'>{_e(cell)}</td>" if index in numeric else f"<td>{_e(cell)}</td>"
            for index, cell in enumerate(line_cells(line))
        )
        + "</tr>"
        for line in quote.get("lines") or []
    )
    return template.substitute(
        company_name=_e(company.get("name")),
        company_address=_e(company.get("address")),
        company_phone=_e(company.get("phone")),
        code=_e(quote["code"]),
        version_no=_e(quote["version_no"]),
        status_label=_e(quote["status_label"]),
        customer_name=_e(quote.get("customer_name")),
        contact=_e(printed.contact),
        owner=_e(printed.owner),
        issued_on=_e((quote.get("created_at") or "")[:10]),
        valid_until=_e(quote["valid_until"]),
        currency=_e(quote["currency"]),
        price_basis="含税价" if quote["prices_include_tax"] else "不含税价",
        lines=lines,
        amount=_e(quote["amount"]),
        discount=_e(_discount(quote)),
        net=_e(quote["net"]),
        tax=_e(quote["tax"]),
        gross=_e(quote["gross"]),
        gross_upper=_e(amount_in_words(quote)),
        terms=_e(quote.get("terms")).replace("\n", "<br>"),
        title=_e(quote.get("title")),
    )


def render_pdf(printed: PrintedQuote) -> bytes:
    """The quote as an A4 landscape PDF."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    if CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(CJK_FONT))
    quote, company = printed.quote, printed.company
    text = ParagraphStyle("text", fontName=CJK_FONT, fontSize=9, leading=12)
    cell = ParagraphStyle("cell", parent=text, fontSize=8, leading=10)
    heading = ParagraphStyle("heading", parent=text, fontSize=16, leading=20, alignment=1)
    company_style = ParagraphStyle("company", parent=text, fontSize=13, leading=17)

    def para(value: Any, style: ParagraphStyle = text) -> Paragraph:
        return Paragraph(_e(value).replace("\n", "<br/>"), style)

    story: list[Any] = []
    if company.get("name"):
        story.append(para(company["name"], company_style))
    for key in ("address", "phone"):
        if company.get(key):
            story.append(para(company[key]))
    story += [Spacer(1, 4 * mm), para("报价单", heading), Spacer(1, 3 * mm)]
    basis = "含税价" if quote["prices_include_tax"] else "不含税价"
    meta = [
        [
            f"报价单号：{quote['code']}（第 {quote['version_no']} 版，{quote['status_label']}）",
            f"报价日期：{(quote.get('created_at') or '')[:10]}",
        ],
        [f"客户：{quote.get('customer_name') or ''}", f"联系人：{printed.contact or ''}"],
        [f"主题：{quote.get('title') or ''}", f"业务员：{printed.owner or ''}"],
        [f"币种：{quote['currency']}（{basis}）", f"有效期至：{quote['valid_until']}"],
    ]
    story.append(Table([[para(a), para(b)] for a, b in meta], colWidths=[150 * mm, 100 * mm]))
    story.append(Spacer(1, 3 * mm))
    rows = [[para(h, cell) for h in HEADERS]]
    rows += [[para(c, cell) for c in line_cells(line)] for line in quote.get("lines") or []]
    widths = [10, 24, 48, 36, 12, 18, 20, 20, 14, 24, 20, 24]
    lines = Table(rows, colWidths=[w * mm for w in widths], repeatRows=1)
    lines.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f0f0f0")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(lines)
    story.append(Spacer(1, 3 * mm))
    summary = Table(
        [[para(label), para(value)] for label, value in totals(quote)],
        colWidths=[30 * mm, 70 * mm],
        hAlign="RIGHT",
    )
    summary.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey)]))
    story.append(summary)
    story.append(Spacer(1, 4 * mm))
    if quote.get("terms"):
        story += [para("条款"), para(quote["terms"])]
    story.append(para(f"本报价有效期至 {quote['valid_until']}，逾期需重新报价。"))
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=landscape(A4),
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"报价单 {quote['code']}",
        author=company.get("name") or "",
    )
    document.build(story)
    return buffer.getvalue()
