"""The library is imported the way a charm imports it: `lib/` first on the path."""

import pathlib
import sys

from hypothesis import settings

HERE = pathlib.Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1] / "lib"), str(HERE)]

# Property tests keep no example database in the source tree, and print how to replay a failure.
settings.register_profile("lib-test", database=None, print_blob=True)
settings.load_profile("lib-test")
