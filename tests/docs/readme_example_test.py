#!/usr/bin/env python3
"""The README's examples must not go stale: each block between `<!-- example:begin FILE -->` and
`<!-- example:end -->` must be exactly FILE (minus its first comment line), which the build
compiles. With the built programs given as NAME=PATH arguments, each one also runs: the network
examples serve real loopback clients and stop cleanly on SIGINT and SIGTERM, the stdin example
echoes a pipe. Every wait is bounded.

Usage: readme_example_test.py SOURCE_ROOT [hello_echo=PATH ...]"""
import os
import pathlib
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time

# In the README's order: the two network services first, then the stdin example.
EXAMPLES = ["samples/hello_echo.cpp", "samples/hello_coro_echo.cpp", "samples/hello_reactor.cpp"]
NETWORK = {"hello_echo", "hello_coro_echo"}
LIMIT = 10.0  # seconds for any single step


def fail(message):
    sys.exit("FAIL: " + message)


def check_text(root):
    readme = (root / "README.md").read_text()
    blocks = re.findall(r"<!-- example:begin (\S+) -->\n```cpp\n(.*?)```\n<!-- example:end -->",
                        readme, re.S)
    if [path for path, _ in blocks] != EXAMPLES:
        fail(f"README example blocks are {[p for p, _ in blocks]}, expected {EXAMPLES}")
    for path, text in blocks:
        sample = (root / path).read_text().split("\n", 1)[1]
        if text != sample:
            fail(f"the README's example differs from {path}")
        print(f"README example matches {path} ({text.count(chr(10))} lines)")


def read_line(proc, deadline):
    """The program's first line of output, or failure when none comes in time."""
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([proc.stdout], [], [], left)[0]:
            fail("no banner line in time")
        chunk = os.read(proc.stdout.fileno(), 256)
        if not chunk:
            fail(f"exited before printing its port (status {proc.wait(LIMIT)})")
        data += chunk
    return data.decode()


def send_all(client, lines):
    try:
        for line in lines:
            client.sendall(line)
    except OSError:
        pass  # the reader sees the missing bytes and says so


def echo_lines(client, lines):
    """Sends the lines one write each and checks that exactly those bytes come back. A thread
    sends while this one reads, so a reply larger than the socket buffers cannot deadlock."""
    expected = b"".join(lines)
    sender = threading.Thread(target=send_all, args=(client, lines))
    sender.start()
    got = b""
    while len(got) < len(expected):
        chunk = client.recv(65536)
        if not chunk:
            break
        got += chunk
    sender.join(LIMIT)
    if got != expected:
        fail(f"sent {expected[:60]!r}..., got back {got[:60]!r}...")


def stop(proc, signum, name):
    """Signals the program and requires a clean exit by itself: status 0, nothing on stderr."""
    proc.send_signal(signum)
    try:
        status = proc.wait(LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        fail(f"{name} did not exit within {LIMIT} s of {signal.Signals(signum).name}")
    errors = proc.stderr.read().decode()
    if status != 0 or errors:
        fail(f"{name} ended with status {status} after {signal.Signals(signum).name}: {errors!r}")


def run_network(name, path, signum):
    proc = subprocess.Popen([path, "0"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        banner = read_line(proc, time.monotonic() + LIMIT)
        match = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)\n", banner)
        if not match:
            fail(f"{name}: unexpected banner {banner!r}")
        port = int(match.group(1))
        # Two clients at once; the second stays connected while the program is stopped, so
        # stopping with open connections is part of what is checked.
        first = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
        second = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
        echo_lines(first, [b"hello\n", b"second line\n"])
        echo_lines(second, [f"line {i}\n".encode() for i in range(100)])
        echo_lines(first, [b"x" * 200000 + b"\n"])  # more than one socket buffer's worth
        first.close()
        echo_lines(second, [b"still here\n"])
        stop(proc, signum, name)
        second.close()
        print(f"{name}: echoed lines for two clients on port {port}, "
              f"exited with status 0 on {signal.Signals(signum).name}")
    except OSError as e:  # refused, reset, timed out: the service did not serve
        fail(f"{name}: {e}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_stdin(path):
    proc = subprocess.run([path], input=b"hello\nbye\n", capture_output=True, timeout=LIMIT)
    if proc.returncode != 0 or not proc.stdout.startswith(b"hello\nbye\n"):
        fail(f"hello_reactor: status {proc.returncode}, output {proc.stdout!r}, "
             f"errors {proc.stderr!r}")
    print("hello_reactor: echoed its standard input and exited with status 0")


def main():
    root = pathlib.Path(sys.argv[1])
    check_text(root)
    programs = dict(arg.split("=", 1) for arg in sys.argv[2:])
    for name in sorted(NETWORK & programs.keys()):
        for signum in (signal.SIGINT, signal.SIGTERM):
            run_network(name, programs[name], signum)
    if "hello_reactor" in programs:
        run_stdin(programs["hello_reactor"])
    if not programs:
        print("samples not built (-Dsamples=false): text checked only")


if __name__ == "__main__":
    main()
