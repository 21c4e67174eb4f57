#!/usr/bin/env python3
"""compare.py: the echo comparison driver (issue 5).

Runs our callback echo server (samples/echo_server, epoll and io_uring backends), our coroutine
echo server (samples/coro_echo_server), the Boost.Asio, raw-epoll and libevent echo servers of
benchmarks/servers/ against the same load generator (benchmarks/loadgen), for several shapes,
interleaved (every round runs every server once per shape, in a shuffled order) and repeated.
The server is pinned to CPU 1 and the load generator to CPU 0. Writes, in --out:

  raw.csv       one row per run
  summary.json  median / min / max of every figure per (shape, server), and the ratios
  summary.md    the table the README quotes
  echo.png      server CPU per message and throughput per shape (median, min..max bars)
  gbench/*.json the Google Benchmark programs' own output (--benchmark_repetitions), and
                their ratios in summary.json under "micro" (CPU-time medians)

Usage (from the repository root, after `meson setup build-bench --buildtype=release && ninja -C
build-bench`):  python3 benchmarks/compare.py [--build build-bench] [--rounds 5] [--seconds 2]

Multi-core (one and two server threads) is benchmarks/compare_threads.py, which shares this code.
"""
import argparse
import csv
import json
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

SHAPES = [
    # name, connections, depth, size, idle
    ("1c_64B", 1, 1, 64, 0),
    ("64c_64B", 64, 1, 64, 0),
    ("256c_1KiB_d4", 256, 4, 1024, 0),
    ("1c_64B_10k_idle", 1, 1, 64, 10000),
]

# name, executable (relative to the build dir), extra flags
SERVERS = [
    ("epoll_raw", "benchmarks/epoll_echo", []),
    ("reactor_epoll", "samples/echo_server", ["--backend", "epoll"]),
    ("reactor_io_uring", "samples/echo_server", ["--backend", "io_uring"]),
    ("reactor_coro", "samples/coro_echo_server", ["--backend", "epoll"]),
    ("asio", "benchmarks/asio_echo", ["--backend", "asio"]),
    ("libevent", "benchmarks/libevent_echo", ["--backend", "libevent"]),
]

FIGURES = ["server_cpu_us_per_msg", "server_sched_us_per_msg", "msgs_per_s", "mb_per_s",
           "p50_us", "p99_us", "server_cpu_pct", "client_cpu_pct"]

SERVER_CPU, CLIENT_CPU = "1", "0"


def raise_fd_limit():
    # 10,000 idle connections need as many descriptors in the server and in the client.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def start_server(build, exe, flags, cpus=SERVER_CPU):
    """Starts a server pinned to `cpus` (a taskset list) and reads its banner."""
    cmd = ["taskset", "-c", cpus, os.path.join(build, exe), "--port", "0"] + flags
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=raise_fd_limit)
    line = proc.stdout.readline()
    m = re.search(r"listening on 127\.0\.0\.1:(\d+) \(backend ([^)]*)\)", line)
    if not m:
        proc.kill()
        err = proc.stderr.read()
        raise RuntimeError(f"{exe} {flags}: no banner: {line!r} {err!r}")
    return proc, int(m.group(1)), m.group(2)


def stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_loadgen(build, proc, port, shape, seconds, warmup, label, what):
    """Runs benchmarks/loadgen (pinned to CLIENT_CPU) with `shape` against the server `proc`
    listening on `port`; returns its JSON row. `what` names the run in an error."""
    _, conns, depth, size, idle = shape
    cmd = ["taskset", "-c", CLIENT_CPU, os.path.join(build, "benchmarks/loadgen"),
           "--port", str(port), "--conns", str(conns), "--depth", str(depth),
           "--size", str(size), "--idle", str(idle), "--seconds", str(seconds),
           "--warmup", str(warmup), "--server-pid", str(proc.pid), "--label", label]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                         preexec_fn=raise_fd_limit)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed against {what}: {out.stderr.strip()}")
    return json.loads(out.stdout)


def measure(build, exe, flags, cpus, shape, seconds, warmup, label, what):
    """One run: starts the server pinned to `cpus`, loads it with `shape`, stops it. The load
    generator's row, with the backend the server's banner named."""
    proc, port, backend = start_server(build, exe, flags, cpus)
    try:
        row = run_loadgen(build, proc, port, shape, seconds, warmup, label, what)
    finally:
        stop_server(proc)
    row["backend"] = backend
    return row


def run_one(build, server, shape, seconds, warmup):
    name, exe, flags = server
    sname = shape[0]
    row = measure(build, exe, flags, SERVER_CPU, shape, seconds, warmup, f"{name}/{sname}",
                  f"{name} ({sname})")
    row.update(server=name, shape=sname)
    return row


def available(build, server):
    try:
        proc, _, _ = start_server(build, server[1], server[2])
    except (RuntimeError, FileNotFoundError) as e:
        print(f"compare: skipping {server[0]}: {e}", file=sys.stderr)
        return False
    stop_server(proc)
    return True


def spread(runs, figures):
    """The rounds of one server and shape: their count, and every figure's median, min and max."""
    entry = {"runs": len(runs)}
    for f in figures:
        vals = [float(r[f]) for r in runs]
        entry[f] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    return entry


def median_range(d, fmt):
    """A table cell: "median (min–max)"."""
    return f"{d['median']:{fmt}} ({d['min']:{fmt}}–{d['max']:{fmt}})"


def summarize(rows, servers):
    summary = {}
    for shape in SHAPES:
        for server in servers:
            runs = [r for r in rows if r["shape"] == shape[0] and r["server"] == server[0]]
            if runs:
                summary.setdefault(shape[0], {})[server[0]] = spread(runs, FIGURES)
    return summary


def ratio(summary, shape, a, b, figure="server_cpu_us_per_msg"):
    try:
        return summary[shape][a][figure]["median"] / summary[shape][b][figure]["median"]
    except (KeyError, ZeroDivisionError):
        return None


def ratios(summary):
    """The ratios the issue's targets are stated in, for every shape (server CPU per message)."""
    out = {}
    for shape in summary:
        best = min((s for s in summary[shape] if s.startswith("reactor_") and s != "reactor_coro"),
                   key=lambda s: summary[shape][s]["server_cpu_us_per_msg"]["median"],
                   default=None)
        out[shape] = {
            "reactor_epoll/epoll_raw": ratio(summary, shape, "reactor_epoll", "epoll_raw"),
            "reactor_io_uring/epoll_raw": ratio(summary, shape, "reactor_io_uring", "epoll_raw"),
            "best_backend": best,
            "reactor_best/asio": ratio(summary, shape, best, "asio") if best else None,
            "reactor_epoll/asio": ratio(summary, shape, "reactor_epoll", "asio"),
            "reactor_coro/reactor_epoll": ratio(summary, shape, "reactor_coro", "reactor_epoll"),
            "libevent/epoll_raw": ratio(summary, shape, "libevent", "epoll_raw"),
            "asio/epoll_raw": ratio(summary, shape, "asio", "epoll_raw"),
        }
    return out


def write_markdown(path, summary, servers, meta):
    lines = [f"Rounds: {meta['rounds']}, {meta['seconds']} s measured per run after "
             f"{meta['warmup']} s warm-up; load average before/after: {meta['load_before']} / "
             f"{meta['load_after']}. Median (min–max) of the rounds.", ""]
    lines.append("| shape | server | server CPU µs/msg | msgs/s | MB/s | p50 µs | p99 µs "
                 "| server CPU % | client CPU % |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for shape in summary:
        for server in servers:
            e = summary[shape].get(server[0])
            if not e:
                continue
            lines.append(f"| {shape} | {server[0]} | "
                         f"{median_range(e['server_cpu_us_per_msg'], '.2f')} | "
                         f"{median_range(e['msgs_per_s'], '.0f')} | {e['mb_per_s']['median']:.1f} | "
                         f"{e['p50_us']['median']:.0f} | {e['p99_us']['median']:.0f} | "
                         f"{e['server_cpu_pct']['median']:.0f} | "
                         f"{e['client_cpu_pct']['median']:.0f} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def have_gnuplot(who):
    """True if gnuplot is installed; else says so (`who` is the driver) and there is no PNG."""
    if shutil.which("gnuplot") is not None:
        return True
    print(f"{who}: gnuplot not found (scripts/setup.sh installs gnuplot-nox): no PNG",
          file=sys.stderr)
    return False


def median_min_max(d):
    """A data row's three columns for one server: median, min, max (NaN when it did not run)."""
    return [d["median"], d["min"], d["max"]] if d else ["NaN"] * 3


def histogram_columns(source, names):
    """The plot command's columns: one histogram per server with min..max error bars."""
    return " , ".join(f"{source} using {3 * i + 2}:{3 * i + 3}:{3 * i + 4}:xtic(1) title '{n}'"
                      for i, n in enumerate(names))


def run_gnuplot(out_dir, name, title, panels, data=""):
    """Writes <name>.gp in `out_dir`, two histogram panels side by side under `title` (`panels`:
    their own settings and plot commands; `data`: inline data blocks), and runs gnuplot on it
    for <name>.png."""
    script = data + f"""
set terminal pngcairo size 1400,560 font ',10' noenhanced
set output '{name}.png'
set multiplot layout 1,2 title '{title}'
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set key top left font ',9'
set grid ytics
{panels}unset multiplot
"""
    with open(os.path.join(out_dir, f"{name}.gp"), "w") as f:
        f.write(script)
    subprocess.run(["gnuplot", f"{name}.gp"], cwd=out_dir, check=True)


def plot(out_dir, summary, servers):
    if not have_gnuplot("compare"):
        return
    names = [s[0] for s in servers]
    for fig in ("server_cpu_us_per_msg", "msgs_per_s"):
        with open(os.path.join(out_dir, f"{fig}.dat"), "w") as f:
            f.write("# shape " + " ".join(f"{n} {n}_min {n}_max" for n in names) + "\n")
            for shape in summary:
                vals = []
                for n in names:
                    vals += median_min_max(summary[shape].get(n, {}).get(fig))
                f.write(shape + " " + " ".join(str(v) for v in vals) + "\n")
    run_gnuplot(out_dir, "echo", "Echo servers on loopback, server on CPU 1, load generator on "
                "CPU 0 (median, bars: min..max)", f"""set xtics rotate by -20 font ',9'
set logscale y
set title 'server CPU per message (µs, log scale, lower is better)'
plot {histogram_columns("'server_cpu_us_per_msg.dat'", names)}
set title 'messages per second (log scale; bounded by the client and the machine, see client CPU %)'
set format y '%.0s%c'
plot {histogram_columns("'msgs_per_s.dat'", names)}
""")


GBENCH = ["dispatch_bench", "idle_bench", "timer_bench", "notify_bench", "coro_bench"]


def run_gbench(build, out_dir, repetitions):
    """Runs the Google Benchmark programs (pinned to CPU 1); returns {name: median ns per item}."""
    os.makedirs(os.path.join(out_dir, "gbench"), exist_ok=True)
    medians = {}
    for prog in GBENCH:
        exe = os.path.join(build, "benchmarks", prog)
        if not os.path.exists(exe):
            print(f"compare: {prog} not built, skipped", file=sys.stderr)
            continue
        out = os.path.join(out_dir, "gbench", prog + ".json")
        subprocess.run(["taskset", "-c", SERVER_CPU, exe, "--benchmark_min_time=0.2",
                        f"--benchmark_repetitions={repetitions}",
                        "--benchmark_report_aggregates_only=true",
                        f"--benchmark_out={out}", "--benchmark_out_format=json"],
                       check=True, stdout=subprocess.DEVNULL, preexec_fn=raise_fd_limit)
        with open(out) as f:
            runs = [b for b in json.load(f)["benchmarks"] if not b.get("error_occurred")]
        # The median aggregate when repeated; the single run otherwise.
        for b in runs:
            if b.get("aggregate_name") == "median" or (repetitions == 1 and
                                                       b.get("run_type") == "iteration"):
                # Cross-thread throughput is wall-clock time (two threads); the rest CPU time.
                key = "real_time" if b["run_name"].endswith("/real_time") else "cpu_time"
                medians[b["run_name"]] = b[key]
        print(f"compare: {prog} done", flush=True)
    return medians


def micro_ratios(m):
    """The micro-benchmark ratios the targets are stated in (CPU time per item, medians)."""
    def r(a, b):
        return m[a] / m[b] if a in m and b in m and m[b] else None
    out = {
        "dispatch reactor_epoll/raw_epoll":
            r("BM_ReactorPingPong/epoll", "BM_RawEpollPingPong"),
        "dispatch reactor_epoll/asio": r("BM_ReactorPingPong/epoll", "BM_AsioPingPong"),
        "idle epoll 10000/0": r("BM_IdleScaling/epoll/10000", "BM_IdleScaling/epoll/0"),
        "idle epoll 1000/0": r("BM_IdleScaling/epoll/1000", "BM_IdleScaling/epoll/0"),
        "idle io_uring 10000/0": r("BM_IdleScaling/io_uring/10000", "BM_IdleScaling/io_uring/0"),
        "idle poll 10000/0": r("BM_IdleScaling/poll/10000", "BM_IdleScaling/poll/0"),
        "idle select 1000/0": r("BM_IdleScaling/select/1000", "BM_IdleScaling/select/0"),
        # Rates: Asio's time over ours, so > 1 means we are faster.
        "timers schedule+cancel rate ours/asio":
            r("BM_AsioTimersScheduleCancel", "BM_ReactorTimersScheduleCancel"),
        "timers schedule+fire rate ours/asio":
            r("BM_AsioTimersScheduleFire", "BM_ReactorTimersScheduleFire"),
        "post rate ours/asio": r("BM_AsioPost/real_time", "BM_ReactorPost/real_time"),
        "notify rate ours/asio post": r("BM_AsioPost/real_time", "BM_ReactorNotify/real_time"),
        "coroutine/callback round trip": r("BM_CoroutineRoundTrip", "BM_CallbackRoundTrip"),
    }
    for b in m:
        if b.startswith("BM_ReactorPingPong/"):
            out[f"dispatch {b.split('/')[1]}/raw_epoll"] = r(b, "BM_RawEpollPingPong")
    return out


def load_average():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def add_run_options(ap, shapes, servers):
    """The options both drivers take: the build, how long and how often, which shapes and
    servers."""
    ap.add_argument("--build", default="build-bench")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--warmup", type=float, default=0.5)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--shapes", default=",".join(s[0] for s in shapes),
                    help="comma-separated subset of: " + ", ".join(s[0] for s in shapes))
    ap.add_argument("--servers", default=",".join(s[0] for s in servers))


def picked(args, shapes, servers):
    """The shapes and servers --shapes and --servers name, in the tables' order."""
    return ([s for s in shapes if s[0] in args.shapes.split(",")],
            [s for s in servers if s[0] in args.servers.split(",")])


def start_meta(args):
    """What the results say about the run; load_after is added at the end."""
    return {"rounds": args.rounds, "seconds": args.seconds, "warmup": args.warmup,
            "load_before": load_average(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "cpus": os.cpu_count()}


def interleaved(rounds, shapes, runs, seed):
    """(round, shape, run) for every round and shape, and every one of `runs` in a shuffled
    order: drift in machine load spreads over every server."""
    rng = random.Random(seed)
    for rnd in range(rounds):
        for shape in shapes:
            order = list(runs)
            rng.shuffle(order)
            for run in order:
                yield rnd, shape, run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    add_run_options(ap, SHAPES, SERVERS)
    ap.add_argument("--gbench-repetitions", type=int, default=5,
                    help="repetitions of each Google Benchmark (0: skip them)")
    args = ap.parse_args()

    if os.cpu_count() < 2:
        sys.exit("compare: needs two CPUs (server and load generator pinned apart)")
    shapes, wanted = picked(args, SHAPES, SERVERS)
    servers = [s for s in wanted if available(args.build, s)]
    os.makedirs(args.out, exist_ok=True)
    meta = start_meta(args)
    rows = []
    for rnd, shape, server in interleaved(args.rounds, shapes, servers, 5):
        row = run_one(args.build, server, shape, args.seconds, args.warmup)
        row["round"] = rnd
        rows.append(row)
        print(f"round {rnd + 1}/{args.rounds} {shape[0]:>16} {server[0]:>17}: "
              f"{row['server_cpu_us_per_msg']:7.2f} µs/msg  {row['msgs_per_s']:9.0f} msg/s"
              f"  p99 {row['p99_us']:8.0f} µs  client CPU {row['client_cpu_pct']:3.0f}%",
              flush=True)
    micro = run_gbench(args.build, args.out, args.gbench_repetitions) \
        if args.gbench_repetitions > 0 else {}
    meta["load_after"] = load_average()

    with open(os.path.join(args.out, "raw.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["round", "shape", "server", "backend", "conns", "depth",
                                          "size", "idle", "seconds", "messages", "verified_bytes",
                                          "server_cpu_s"] + FIGURES + ["label"])
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in w.fieldnames})
    summary = summarize(rows, servers)
    result = {"meta": meta, "summary": summary, "ratios": ratios(summary),
              "micro_cpu_ns": micro, "micro": micro_ratios(micro)}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(result, f, indent=1)
    write_markdown(os.path.join(args.out, "summary.md"), summary, servers, meta)
    plot(args.out, summary, servers)
    print(json.dumps({"echo (server CPU per message)": result["ratios"],
                      "micro": result["micro"]}, indent=1))


if __name__ == "__main__":
    main()
