"""A local fake of the Stripe API (the few endpoints farebox calls), served over HTTP
so the real `stripe` library talks to it through its `api_base`."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

DECLINING_PM = "pm_card_chargeCustomerFail"
REFUSED_PM = "pm_card_chargeDeclined"


class FakeStripe:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, Any], str | None]] = []
        self.by_key: dict[str, tuple[int, dict[str, Any]]] = {}
        self.refunded: set[str] = set()
        self.ids = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeStripe:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def charges(self) -> list[dict[str, Any]]:
        return [params for method, path, params, _ in self.requests if path == "/v1/payment_intents"]

    def _id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self.ids):04d}"

    def route(self, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if path == "/v1/customers":
            return 200, {"id": self._id("cus"), "object": "customer", "email": params.get("email")}
        if path.startswith("/v1/payment_methods/") and path.endswith("/attach"):
            pm = path.split("/")[3]
            if pm == REFUSED_PM:
                return 402, {"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}}
            return 200, {"id": pm, "object": "payment_method", "customer": params["customer"], "card": {"brand": "visa", "last4": "0341" if pm == DECLINING_PM else "4242"}}
        if path == "/v1/payment_intents":
            intent = {"id": self._id("pi"), "object": "payment_intent", "amount": int(params["amount"]), "currency": params["currency"], "customer": params["customer"]}
            if params["payment_method"] == DECLINING_PM:
                intent["status"] = "requires_payment_method"
                return 402, {"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined.", "payment_intent": intent}}
            return 200, {**intent, "status": "succeeded"}
        if path == "/v1/refunds":
            if params["payment_intent"] in self.refunded:  # as Stripe: a charge refunded in full takes no more
                return 400, {"error": {"type": "invalid_request_error", "code": "charge_already_refunded",
                                       "message": f"Charge {params['payment_intent']} has already been refunded."}}
            self.refunded.add(params["payment_intent"])
            return 200, {"id": self._id("re"), "object": "refund", "status": "succeeded", "payment_intent": params["payment_intent"],
                         "amount": int(params["amount"])}
        if path == "/v1/checkout/sessions":
            return 200, {"id": self._id("cs"), "object": "checkout.session", "url": "https://checkout.stripe.test/c/pay/" + params["customer"], "mode": params["mode"]}
        if path == "/v1/billing_portal/sessions":
            return 200, {"id": self._id("bps"), "object": "billing_portal.session", "url": "https://billing.stripe.test/p/session/" + params["customer"]}
        return 404, {"error": {"type": "invalid_request_error", "message": f"no fake for {path}"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                params = {k: v[0] for k, v in parse_qs(raw).items()}
                key = self.headers.get("Idempotency-Key")
                fake.requests.append(("POST", self.path, params, key))
                if key and key in fake.by_key:
                    status, body = fake.by_key[key]
                else:
                    status, body = fake.route(self.path, params)
                    if key:
                        fake.by_key[key] = (status, body)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        return Handler


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header as Stripe computes it (v1 = HMAC-SHA256 of "t.payload")."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"
