"""numpy's random numbers in a clone (tests/python/test_numpy.py). numpy is imported, and so seeded,
before the snapshot; the runtime re-seeds its global generator in each clone (docs/python.md,
"Randomness"), while a Generator made before the snapshot stays shared, as documented."""
import numpy

# Made before the snapshot, so every clone holds the same state: what the global generator would
# look like without the runtime's reseed.
SHARED = numpy.random.default_rng()


def handler(event):
    n = int(event.get("n", 4))
    return {
        "global": [int(x) for x in numpy.random.randint(0, 2**31, size=n)],
        "shared_generator": [int(x) for x in SHARED.integers(0, 2**31, size=n)],
    }
