#!/usr/bin/env python3
"""The README's example with a regular file on standard input (`hello_reactor < README.md`): on
every backend this build can run, it must print the file exactly and exit 0. epoll refuses
regular files and kqueue reports them readable only until their end; the backends keep them
themselves so that this works everywhere. Usage: regular_file_stdin_test.py HELLO_REACTOR FILE"""
import os
import subprocess
import sys

hello, path = sys.argv[1], sys.argv[2]
expected = open(path, "rb").read()
failures = []
ran = 0
# None: the default ("best", epoll on Linux), then each backend by name.
for backend in (None, "select", "poll", "epoll", "io_uring", "kqueue"):
    env = dict(os.environ)
    env.pop("REACTOR_BACKEND", None)
    if backend is not None:
        env["REACTOR_BACKEND"] = backend
    name = backend or "best"
    with open(path, "rb") as stdin:
        try:
            run = subprocess.run([hello], stdin=stdin, capture_output=True, env=env, timeout=30)
        except subprocess.TimeoutExpired:
            failures.append(f"{name}: no end of input within 30 s")
            continue
    err = run.stderr.decode(errors="replace").strip()
    if run.returncode != 0 and "not available" in err:
        print(f"{name}: not available in this build or kernel, skipped ({err})")
        continue
    ran += 1
    if run.returncode != 0:
        failures.append(f"{name}: exit status {run.returncode}: {err}")
    elif run.stdout != expected:
        failures.append(f"{name}: printed {len(run.stdout)} bytes, not the file's {len(expected)}")
    else:
        print(f"{name}: printed the file exactly ({len(expected)} bytes)")
if failures:
    sys.exit("\n".join(failures))
if ran == 0:
    sys.exit("no backend could run")
