#!/usr/bin/env python3
"""The README's example must be exactly samples/hello_reactor.cpp (minus its first comment line),
which the build compiles, so the example on the first screen always builds."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
readme = (root / "README.md").read_text()
match = re.search(r"<!-- example:begin -->\n```cpp\n(.*?)```\n<!-- example:end -->", readme, re.S)
if not match:
    sys.exit("README.md has no example block between the example markers")
sample = (root / "samples" / "hello_reactor.cpp").read_text().split("\n", 1)[1]
if match.group(1) != sample:
    sys.exit("README example differs from samples/hello_reactor.cpp")
lines = match.group(1).count("\n")
print(f"README example matches samples/hello_reactor.cpp ({lines} lines)")
