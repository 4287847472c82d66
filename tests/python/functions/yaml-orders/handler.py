"""A test function of a kind the examples do not ship: it imports a module of its own directory
(rules.py) and a Debian package's module (yaml, from python3-yaml), raises on bad input, and uses
uuid, secrets and OpenSSL's generator (ssl), and prints a line (the clone's log). The event: {"order": "<YAML text>"}; the
answer: the order's total and an id."""

import secrets
import ssl
import uuid

import yaml

import rules


def handler(event):
    text = event.get("order") if isinstance(event, dict) else None
    if not isinstance(text, str):
        raise ValueError("the event needs an 'order' string of YAML")
    order = yaml.safe_load(text)
    if not isinstance(order, dict) or "items" not in order:
        raise ValueError("the order needs 'items'")
    print(f"yaml-orders: pricing {len(order['items'])} items")
    return {
        "total": rules.total(order["items"], order.get("coupon")),
        "order_id": str(uuid.uuid4()),
        "token": secrets.token_hex(8),
        "ssl_token": ssl.RAND_bytes(8).hex(),  # OpenSSL's generator: reseeded in every clone
    }
