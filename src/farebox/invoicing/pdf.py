"""Invoice PDFs: an HTML template (Jinja) rendered to PDF by xhtml2pdf (ReportLab underneath).

The text stays text in the PDF, so it can be searched, copied and extracted.
"""

from __future__ import annotations

import io
import logging
from decimal import Decimal
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

_env = Environment(loader=PackageLoader("farebox", "templates"), autoescape=select_autoescape(["html"]))


def render_html(invoice: Any) -> str:
    tax_percent = (Decimal(invoice.tax_rate_bp) / Decimal(100)).normalize()
    return _env.get_template("invoices/invoice.html").render(invoice=invoice, tax_percent=f"{tax_percent:f}")


def render_invoice(invoice: Any) -> bytes:
    from xhtml2pdf import pisa

    logging.getLogger("xhtml2pdf").setLevel(logging.ERROR)
    out = io.BytesIO()
    status = pisa.CreatePDF(render_html(invoice), dest=out, encoding="utf-8")
    if status.err:
        raise RuntimeError(f"the invoice PDF could not be rendered ({status.err} error(s))")
    return out.getvalue()
