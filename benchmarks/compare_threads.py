#!/usr/bin/env python3
"""compare_threads.py: the multi-core echo comparison (issue 6), built on compare.py's code.

For 1 and 2 server threads, runs against the same load generator (benchmarks/loadgen):

  reactor_pool  samples/echo_server --threads N            a ReactorPool: one single-threaded
                                                            Reactor per thread, SO_REUSEPORT
  reactor_tp    samples/echo_server --threads N --model tp  the ThreadPoolReactor model (one
                                                            reactor, N leader/follower threads);
                                                            skipped, with a message, when
                                                            `echo_server --help` has no --model
  asio          benchmarks/asio_echo --threads N           one io_context run() from N threads

interleaved (every round runs every server once per shape and thread count, in a shuffled order)
and repeated; reports the median and min..max of the rounds.

Pinning: the load generator is on CPU 0. With one server thread the server is on CPU 1; with two
it may use CPUs 0-1, so it SHARES CPU 0 WITH THE LOAD GENERATOR (on a 2-CPU machine there is no
third CPU to give either of them).

Writes, in --out: threads.csv (one row per run), threads.md (the table and the ratios),
threads.png (+ threads.gp, its gnuplot script).

Usage (from the repository root, after `meson setup build-bench --buildtype=release && ninja -C
build-bench`):  python3 benchmarks/compare_threads.py [--build build-bench] [--rounds 5]
"""
import argparse
import csv
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (shared: runs, options, summaries, tables' cells, plots)

CLIENT_CPU = compare.CLIENT_CPU  # "0"
SERVER_CPUS = {1: "1", 2: "0,1"}

# name, executable (relative to the build dir), flags (before --threads N), needs this in --help
SERVERS = [
    ("reactor_pool", "samples/echo_server", ["--backend", "epoll"], None),
    ("reactor_tp", "samples/echo_server", ["--backend", "epoll", "--model", "tp"], "--model"),
    ("asio", "benchmarks/asio_echo", ["--backend", "asio"], None),
]
SHAPES = [s for s in compare.SHAPES if s[0] in ("64c_64B", "256c_1KiB_d4")]
FIGURES = ["msgs_per_s", "server_cpu_us_per_msg", "server_cpu_pct", "client_cpu_pct", "p50_us",
           "p99_us"]


def server_cpus(threads):
    return SERVER_CPUS.get(threads, f"0-{threads - 1}")


def unavailable(build, server, thread_counts):
    """None if the server starts with every thread count, else why not (also printed)."""
    name, exe, flags, needs = server
    path = os.path.join(build, exe)
    reason = None
    if not os.path.exists(path):
        reason = f"{path} is not built"
    elif needs is not None:
        help_text = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=10)
        if needs not in help_text.stdout + help_text.stderr:
            reason = f"`{exe} --help` does not list {needs}: that model is not in this build"
    for n in thread_counts if reason is None else []:
        try:
            proc, _, _ = compare.start_server(build, exe, flags + ["--threads", str(n)],
                                              server_cpus(n))
        except (RuntimeError, FileNotFoundError) as e:
            reason = f"does not start with --threads {n}: {e}"
            break
        compare.stop_server(proc)
    if reason is not None:
        print(f"compare_threads: SKIPPING {name}: {reason}", flush=True)
    return reason


def run_one(build, server, threads, shape, seconds, warmup):
    name, exe, flags, _ = server
    sname = shape[0]
    cpus = server_cpus(threads)
    row = compare.measure(build, exe, flags + ["--threads", str(threads)], cpus, shape, seconds,
                          warmup, f"{name}/{threads}t/{sname}",
                          f"{name} --threads {threads} ({sname})")
    row.update(server=name, threads=threads, shape=sname, server_cpus=cpus,
               client_cpus=CLIENT_CPU)
    return row


def summarize(rows):
    runs = {}
    for r in rows:
        runs.setdefault((r["shape"], r["threads"], r["server"]), []).append(r)
    return {key: compare.spread(group, FIGURES) for key, group in runs.items()}


def ratio(summary, a, b, figure):
    try:
        return summary[a][figure]["median"] / summary[b][figure]["median"]
    except (KeyError, ZeroDivisionError):
        return None


def fmt_ratio(x):
    return "—" if x is None else f"{x:.2f}"


def write_csv(path, rows):
    fields = ["round", "shape", "threads", "server", "backend", "server_cpus", "client_cpus",
              "conns", "depth", "size", "seconds", "messages", "verified_bytes",
              "server_cpu_s"] + compare.FIGURES + ["label"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k) for k in fields})


def write_markdown(path, summary, servers, shapes, thread_counts, meta, skipped):
    lines = [
        f"Echo servers, 1 and 2 server threads. {meta['rounds']} rounds, {meta['seconds']} s "
        f"measured per run after {meta['warmup']} s warm-up, interleaved; median (min–max) of "
        f"the rounds. Load average before/after: {meta['load_before']} / {meta['load_after']}; "
        f"{meta['cpus']} CPUs.",
        "",
        "Pinning: the load generator (one thread) on CPU 0. 1 server thread: server on CPU 1. "
        "2 server threads: server on CPUs 0-1, **sharing CPU 0 with the load generator**.",
        "",
    ]
    for name in skipped:
        lines += [f"Skipped: `{name}` ({skipped[name]}).", ""]
    lines.append("| shape | threads | server | msgs/s | server CPU µs/msg | server CPU % "
                 "| client CPU % | p99 µs |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for shape in shapes:
        for n in thread_counts:
            for s in servers:
                e = summary.get((shape[0], n, s[0]))
                if not e:
                    continue
                lines.append(f"| {shape[0]} | {n} | {s[0]} | "
                             f"{compare.median_range(e['msgs_per_s'], '.0f')} | "
                             f"{compare.median_range(e['server_cpu_us_per_msg'], '.2f')} | "
                             f"{e['server_cpu_pct']['median']:.0f} | "
                             f"{e['client_cpu_pct']['median']:.0f} | "
                             f"{e['p99_us']['median']:.0f} |")
    lines += ["", "Ratios of the medians: ours / Asio (throughput: > 1 is better for ours; "
              "CPU per message: < 1 is better for ours), and 2 threads / 1 thread "
              "(throughput scaling).", "",
              "| shape | threads | server | msgs/s ours/Asio | CPU µs/msg ours/Asio |",
              "|---|---|---|---|---|"]
    for shape in shapes:
        for n in thread_counts:
            for s in servers:
                if s[0] == "asio" or (shape[0], n, s[0]) not in summary:
                    continue
                a, b = (shape[0], n, s[0]), (shape[0], n, "asio")
                lines.append(f"| {shape[0]} | {n} | {s[0]} | "
                             f"{fmt_ratio(ratio(summary, a, b, 'msgs_per_s'))} | "
                             f"{fmt_ratio(ratio(summary, a, b, 'server_cpu_us_per_msg'))} |")
    if len(thread_counts) > 1:
        lo, hi = min(thread_counts), max(thread_counts)
        lines += ["", f"| shape | server | msgs/s {hi} threads / {lo} thread | "
                      f"CPU µs/msg {hi} threads / {lo} thread |", "|---|---|---|---|"]
        for shape in shapes:
            for s in servers:
                a, b = (shape[0], hi, s[0]), (shape[0], lo, s[0])
                if a not in summary or b not in summary:
                    continue
                lines.append(f"| {shape[0]} | {s[0]} | "
                             f"{fmt_ratio(ratio(summary, a, b, 'msgs_per_s'))} | "
                             f"{fmt_ratio(ratio(summary, a, b, 'server_cpu_us_per_msg'))} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(out_dir, summary, servers, shapes, thread_counts):
    if not compare.have_gnuplot("compare_threads"):
        return
    names = [s[0] for s in servers]
    blocks = []
    for fig in ("msgs_per_s", "server_cpu_us_per_msg"):
        rows = []
        for shape in shapes:
            for n in thread_counts:
                vals = []
                for name in names:
                    vals += compare.median_min_max(summary.get((shape[0], n, name), {}).get(fig))
                rows.append(f"{shape[0]}/{n}t " + " ".join(str(v) for v in vals))
        blocks.append(f"${fig} << EOD\n" + "\n".join(rows) + "\nEOD\n")
    compare.run_gnuplot(
        out_dir, "threads", "Echo servers, 1 and 2 server threads (load generator on CPU 0; 1 "
        "thread: server on CPU 1; 2 threads: server on CPUs 0-1, sharing CPU 0 with the load "
        "generator). Median, bars: min..max", f"""set yrange [0:*]
set title 'messages per second (higher is better)'
set format y '%.0s%c'
plot {compare.histogram_columns("$msgs_per_s", names)}
set title 'server CPU per message (µs, lower is better)'
set format y '%g'
plot {compare.histogram_columns("$server_cpu_us_per_msg", names)}
""", data="".join(blocks))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    compare.add_run_options(ap, SHAPES, SERVERS)
    ap.add_argument("--threads", default="1,2", help="server thread counts (default 1,2)")
    args = ap.parse_args()

    if os.cpu_count() < 2:
        sys.exit("compare_threads: needs two CPUs")
    thread_counts = [int(t) for t in args.threads.split(",")]
    shapes, wanted = compare.picked(args, SHAPES, SERVERS)
    servers, skipped = [], {}
    for s in wanted:
        reason = unavailable(args.build, s, thread_counts)
        if reason is None:
            servers.append(s)
        else:
            skipped[s[0]] = reason
    if max(thread_counts) > 1:
        print("compare_threads: NOTE: with 2 server threads the server runs on CPUs 0-1 and "
              "shares CPU 0 with the load generator", flush=True)
    os.makedirs(args.out, exist_ok=True)
    meta = compare.start_meta(args)
    rows = []
    runs = [(s, n) for s in servers for n in thread_counts]
    for rnd, shape, (server, n) in compare.interleaved(args.rounds, shapes, runs, 6):
        row = run_one(args.build, server, n, shape, args.seconds, args.warmup)
        row["round"] = rnd
        rows.append(row)
        print(f"round {rnd + 1}/{args.rounds} {shape[0]:>13} {server[0]:>12} {n}t "
              f"(server CPUs {row['server_cpus']}): {row['msgs_per_s']:9.0f} msg/s "
              f"{row['server_cpu_us_per_msg']:6.2f} µs/msg  server CPU "
              f"{row['server_cpu_pct']:3.0f}%  client CPU {row['client_cpu_pct']:3.0f}%",
              flush=True)
    meta["load_after"] = compare.load_average()
    write_csv(os.path.join(args.out, "threads.csv"), rows)
    summary = summarize(rows)
    write_markdown(os.path.join(args.out, "threads.md"), summary, servers, shapes, thread_counts,
                   meta, skipped)
    plot(args.out, summary, servers, shapes, thread_counts)
    with open(os.path.join(args.out, "threads.md")) as f:
        print(f.read())


if __name__ == "__main__":
    main()
