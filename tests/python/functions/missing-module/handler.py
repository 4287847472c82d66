"""A test function that imports a module nobody has: its build must fail, naming the module."""

import sprout_no_such_module_xyz  # noqa: F401


def handler(event):
    return event
