"""The counting check() of the Python test scripts and their closing "N passed, N failed" line."""

import sys

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)


def finish():
    """Prints the closing line; the exit status, non-zero on a failure or when nothing ran."""
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0
