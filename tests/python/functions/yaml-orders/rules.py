"""Pricing rules of the yaml-orders test function: a module of the function's own directory."""

COUPONS = {"TENOFF": 10}


def total(items, coupon=None):
    cents = sum(int(i["qty"]) * int(i["cents"]) for i in items)
    off = COUPONS.get(coupon, 0)
    return cents - cents * off // 100
