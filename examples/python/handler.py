"""An order-quote function: the Python example for sprout's Python runtime (docs/python.md).

Import time does the expensive part once, before the snapshot: it imports json, decimal, email,
asyncio and sqlite3, loads a product catalogue into an in-memory SQLite database (the loaders run
concurrently under asyncio) and joins it into a lookup table. A call is then small: one dictionary
lookup, a few Decimal operations and an address parse.

    {"sku": "SKU-0042", "qty": 3, "country": "DE", "customer": "Ada <ada@example.org>"}
 -> {"sku": "SKU-0042", "name": "...", "qty": 3, "unit_price": "12.34", "net": "37.02",
     "vat_rate": "0.19", "vat": "7.03", "total": "44.05", "currency": "EUR",
     "customer": {"name": "Ada", "email": "ada@example.org"}}

Requests for sprout's tests and benchmark (like the hello example's "identity"):
    {"op": "random"}            -> random.random(), uuid.uuid4() and os.urandom(16) of this clone,
                                   and sprout_shim.clone_info(): its id and identity cost
    {"op": "info"}              -> sprout_shim.clone_info() alone (no system call)
    {"op": "sleep", "ms": N}    -> time.sleep(N / 1000), returns {"slept_ms": how long it took}:
                                   a clone's guest timers fire (its restored LAPIC timer is armed)
    {"op": "raise", "message": M} raises ValueError(M)
    {"op": "print", "bytes": N, "result_bytes": M}
                                -> writes N bytes to stdout and a line to stderr, returns
                                   {"printed": N, "filler": M characters}
"""

import asyncio
import decimal
import email.utils
import json
import os
import random
import sqlite3
import sys
import time
import uuid
from decimal import Decimal

import sprout_shim  # the runtime running this module: clone_info()

PRODUCTS = 2000
CENT = Decimal("0.01")
MONEY = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN)

# VAT rates by country and class, as a service would ship them: a JSON document.
VAT_JSON = """{
  "DE": {"standard": "0.19", "reduced": "0.07"}, "FR": {"standard": "0.20", "reduced": "0.055"},
  "NL": {"standard": "0.21", "reduced": "0.09"}, "IT": {"standard": "0.22", "reduced": "0.10"},
  "ES": {"standard": "0.21", "reduced": "0.10"}, "IE": {"standard": "0.23", "reduced": "0.135"},
  "SE": {"standard": "0.25", "reduced": "0.12"}, "PL": {"standard": "0.23", "reduced": "0.08"}
}"""
CATEGORIES = {"books": "reduced", "food": "reduced", "tools": "standard", "games": "standard",
              "garden": "standard", "music": "standard"}


def _schema(db):
    db.executescript("""
        CREATE TABLE category (name TEXT PRIMARY KEY, vat_class TEXT NOT NULL);
        CREATE TABLE vat (country TEXT, vat_class TEXT, rate TEXT, PRIMARY KEY (country, vat_class));
        CREATE TABLE product (sku TEXT PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL,
                              price_cents INTEGER NOT NULL);
    """)


async def _load_vat(db):
    rows = [(c, k, r) for c, classes in json.loads(VAT_JSON).items() for k, r in classes.items()]
    db.executemany("INSERT INTO vat VALUES (?, ?, ?)", rows)
    await asyncio.sleep(0)


async def _load_categories(db):
    db.executemany("INSERT INTO category VALUES (?, ?)", CATEGORIES.items())
    await asyncio.sleep(0)


async def _load_products(db):
    # A fixed generator, not the random module: the catalogue is the same in every image.
    gen = random.Random(20240601)
    words = ["steel", "oak", "blue", "quiet", "rapid", "prime", "lunar", "amber", "swift", "north"]
    things = ["lamp", "chair", "kettle", "drill", "guide", "album", "board", "hose", "spade", "novel"]
    cats = sorted(CATEGORIES)
    batch = []
    for i in range(1, PRODUCTS + 1):
        name = f"{gen.choice(words).title()} {gen.choice(words)} {gen.choice(things)}"
        batch.append((f"SKU-{i:04d}", name, gen.choice(cats), gen.randrange(99, 25000)))
        if len(batch) == 250:
            db.executemany("INSERT INTO product VALUES (?, ?, ?, ?)", batch)
            batch.clear()
            await asyncio.sleep(0)  # let the other loaders run


async def _load(db):
    await asyncio.gather(_load_vat(db), _load_categories(db), _load_products(db))


def _build_tables():
    db = sqlite3.connect(":memory:")
    _schema(db)
    asyncio.run(_load(db))
    products = {
        sku: (name, MONEY.divide(Decimal(cents), 100).quantize(CENT), vat_class)
        for sku, name, vat_class, cents in db.execute(
            "SELECT p.sku, p.name, c.vat_class, p.price_cents FROM product p "
            "JOIN category c ON c.name = p.category")
    }
    rates = {(c, k): Decimal(r) for c, k, r in db.execute("SELECT country, vat_class, rate FROM vat")}
    db.close()
    return products, rates


PRODUCT_TABLE, VAT_TABLE = _build_tables()


def _quote(event):
    sku = event["sku"]
    try:
        name, unit, vat_class = PRODUCT_TABLE[sku]
    except KeyError:
        raise KeyError(f"unknown sku {sku!r}") from None
    qty = int(event.get("qty", 1))
    if not 0 < qty <= 1000:
        raise ValueError(f"qty must be 1..1000, got {qty}")
    country = event.get("country", "DE")
    rate = VAT_TABLE[(country, vat_class)]
    net = MONEY.multiply(unit, qty).quantize(CENT)
    vat = MONEY.multiply(net, rate).quantize(CENT)
    quote = {"sku": sku, "name": name, "qty": qty, "unit_price": str(unit), "net": str(net),
             "vat_rate": str(rate), "vat": str(vat), "total": str(net + vat), "currency": "EUR"}
    if "customer" in event:
        real_name, addr = email.utils.parseaddr(event["customer"])
        if "@" not in addr:
            raise ValueError(f"customer has no e-mail address: {event['customer']!r}")
        quote["customer"] = {"name": real_name, "email": addr.lower()}
    return quote


def handler(event):
    op = event.get("op", "quote") if isinstance(event, dict) else None
    if op == "quote":
        return _quote(event)
    if op == "random":
        # What must differ between clones of one snapshot (docs/python.md, "Randomness"), and
        # which clone this is.
        return {"random": random.random(), "uuid4": str(uuid.uuid4()),
                "urandom": os.urandom(16).hex(), "clone": sprout_shim.clone_info()}
    if op == "info":
        return sprout_shim.clone_info()
    if op == "sleep":
        t0 = time.monotonic()
        time.sleep(min(max(float(event.get("ms", 0)), 0.0), 1000.0) / 1000)
        return {"slept_ms": round((time.monotonic() - t0) * 1000, 1)}
    if op == "raise":
        raise ValueError(event.get("message", "raised on request"))
    if op == "print":
        n = int(event.get("bytes", 0))
        line = "x" * 99
        for _ in range(n // 100):
            print(line)
        print("y" * (n % 100), end="")
        print(f"printed {n} bytes to stdout", file=sys.stderr)
        return {"printed": n, "filler": "r" * int(event.get("result_bytes", 0))}
    raise ValueError(f"unknown op {op!r}")


# Events the runtime primes itself with before the snapshot: every path a call takes.
SAMPLE_EVENTS = [
    {"sku": "SKU-0042", "qty": 3, "country": "DE", "customer": "Ada Lovelace <ada@example.org>"},
    {"sku": "SKU-1999", "qty": 1, "country": "FR"},
    {"op": "random"},
    {"op": "info"},
    {"op": "print", "bytes": 300},
    {"op": "raise", "message": "priming the error path"},
]
