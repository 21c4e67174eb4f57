#!/usr/bin/env python3
"""Installation and consumption tests (meson test suite 'consumer').

  consumer_test.py subproject --source-root DIR [--sanitize VALUE]
      Copies subproject_user/ to a temporary directory, puts a copy of this repository's files
      in its subprojects/reactor, forces the fallback (so an installed reactor cannot stand in
      for the subproject), then configures, builds and runs it: proves that
      dependency('reactor', fallback : ['reactor', 'reactor_dep']) works for another project.

  consumer_test.py install --source-root DIR --build-root DIR --prefix P --libdir L
                   --version V [--sanitize VALUE]
      Runs `meson install --destdir` of the build under test into a temporary directory, checks
      the installed files, compiles every installed header in one translation unit, then builds
      the README's example (samples/hello_reactor.cpp) with plain
      g++ $(pkg-config --cflags --libs reactor) against that staged copy and runs it.

Each step is bounded in time; temporary directories are removed. Exit status 77 (Meson's
"skipped") with the reason on stdout when a test cannot run here, never a silent pass.
"""
import argparse
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile

SKIP = 77
HERE = pathlib.Path(__file__).resolve().parent


class Failure(Exception):
    pass


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(SKIP)


def run(cmd, *, cwd=None, env=None, timeout=120, stdin_text=None):
    """Runs `cmd` in its own process group, killing the whole group when it overruns."""
    print("+ " + " ".join(str(c) for c in cmd), flush=True)
    proc = subprocess.Popen([str(c) for c in cmd], cwd=cwd, env=env, text=True,
                            stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(stdin_text, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise Failure(f"timed out after {timeout} s: {cmd[0]}")
    if proc.returncode != 0:
        print(out)
        raise Failure(f"exit status {proc.returncode}: {' '.join(str(c) for c in cmd)}")
    return out


def need(tool):
    path = shutil.which(tool)
    if not path:
        skip(f"'{tool}' is not installed (scripts/setup.sh installs it)")
    return path


def clean_env():
    """The caller's environment minus what would let an installed reactor leak into a test."""
    env = dict(os.environ)
    for var in ("PKG_CONFIG_PATH", "PKG_CONFIG_LIBDIR", "PKG_CONFIG_SYSROOT_DIR", "CPATH",
                "CPLUS_INCLUDE_PATH", "LIBRARY_PATH", "CXXFLAGS", "LDFLAGS"):
        env.pop(var, None)
    return env


def copy_repository(source_root, dest):
    """Copies the repository's files as a clone would hold them (tracked and untracked files,
    not ignored ones such as build directories), falling back to a filtered tree copy."""
    try:
        listing = subprocess.run(
            ["git", "-C", str(source_root), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"], check=True, capture_output=True, timeout=30).stdout
        files = [f for f in listing.decode().split("\0") if f]
    except (OSError, subprocess.SubprocessError):
        files = None
    if not files:
        shutil.copytree(source_root, dest, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", "build*", "subprojects"))
        return
    for rel in files:
        src = source_root / rel
        if not src.is_file():  # listed but deleted in the working tree
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)


def test_subproject(args, tmp):
    if args.sanitize not in ("", "none"):
        skip(f"this build is sanitized (b_sanitize={args.sanitize}); the subproject test builds "
             "its own plain copy of the library, independent of this build's flags, so it runs "
             "in the plain build only")
    meson, ninja = need("meson"), need("ninja")
    source_root = pathlib.Path(args.source_root).resolve()
    project = tmp / "consumer"
    shutil.copytree(HERE / "subproject_user", project)
    copy_repository(source_root, project / "subprojects" / "reactor")
    build = tmp / "build"
    # Plain flags (no optimisation, no debug info): the quickest correct build of the library.
    run([meson, "setup", build, project, "--buildtype=plain", "--wrap-mode=nodownload",
         "--force-fallback-for=reactor"], env=clean_env(), timeout=120)
    run([ninja, "-C", build, "-j", "2"], env=clean_env(), timeout=400)
    if not (build / "subprojects" / "reactor" / "libreactor.a").exists() and \
            not list((build / "subprojects" / "reactor").glob("libreactor.so*")):
        raise Failure("the library was not built from subprojects/reactor")
    out = run([build / "consumer"], timeout=20)
    print(out, end="")
    if "consumer: ok" not in out:
        raise Failure("the consumer program did not report success")
    print("PASS: a separate Meson project built and ran against reactor as a subproject")


def test_install(args, tmp):
    gxx, pkg_config, meson = need("g++"), need("pkg-config"), need("meson")
    source_root = pathlib.Path(args.source_root).resolve()
    build_root = pathlib.Path(args.build_root).resolve()
    stage = tmp / "stage"
    # What this build installs, staged: the real install rules, not a copy made by hand.
    run([meson, "install", "-C", build_root, "--no-rebuild", "--quiet", "--destdir", stage],
        timeout=120)
    prefix = stage / pathlib.Path(args.prefix).relative_to("/")
    libdir = prefix / args.libdir if not os.path.isabs(args.libdir) else \
        stage / pathlib.Path(args.libdir).relative_to("/")
    includedir = prefix / "include" / "reactor"
    expected = [includedir / "reactor" / "reactor.hpp",
                includedir / "base" / "event_handler.hpp",
                includedir / "demux" / "demultiplexer.hpp",
                libdir / "pkgconfig" / "reactor.pc"]
    missing = [str(p.relative_to(stage)) for p in expected if not p.exists()]
    internals = [str(p.relative_to(stage)) for p in includedir.rglob("*")
                 if p.name in ("detail", "no_sigpipe.hpp", "always_ready.hpp")]
    if internals:
        raise Failure(f"internal headers installed: {internals}")
    libs = list(libdir.glob("libreactor.a")) + list(libdir.glob("libreactor.so*"))
    if not libs:
        missing.append(str((libdir / "libreactor.{a,so}").relative_to(stage)))
    if missing:
        raise Failure("not installed: " + ", ".join(missing))

    # pkg-config reads the installed reactor.pc unchanged; PKG_CONFIG_SYSROOT_DIR maps the paths
    # it names (prefix P) into the staging directory, as for any staged or cross install.
    env = clean_env()
    env["PKG_CONFIG_PATH"] = str(libdir / "pkgconfig")
    env["PKG_CONFIG_SYSROOT_DIR"] = str(stage)
    version = run([pkg_config, "--modversion", "reactor"], env=env).strip()
    if version != args.version:
        raise Failure(f"pkg-config reports version {version}, the project is {args.version}")
    flags = run([pkg_config, "--cflags", "--libs", "reactor"], env=env).split()
    print(f"pkg-config --cflags --libs reactor: {' '.join(flags)}")
    if f"-I{includedir}" not in flags:
        raise Failure(f"Cflags lack -I{includedir}")
    if not any(f in ("-pthread", "-lpthread") for f in flags):
        raise Failure("Libs lack the threads library (-pthread)")

    # A sanitized library needs its runtime in the program too; nothing else changes.
    extra = [f"-fsanitize={args.sanitize}"] if args.sanitize not in ("", "none") else []

    # Every installed header, in one translation unit: no header may need a file that is not
    # installed (or the in-tree include path).
    headers = sorted(p.relative_to(includedir) for p in includedir.rglob("*.hpp"))
    all_headers = tmp / "all_headers.cpp"
    all_headers.write_text("".join(f"#include <{h.as_posix()}>\n" for h in headers))
    run([gxx, "-std=c++20", "-fsyntax-only", all_headers] + flags, cwd=tmp, env=env)
    print(f"all {len(headers)} installed headers compile together")

    # The README's example, built away from the source tree so only installed headers can serve.
    hello_src = tmp / "hello.cpp"
    shutil.copy2(source_root / "samples" / "hello_reactor.cpp", hello_src)
    hello = tmp / "hello"
    deps = run([gxx, "-std=c++20", "-MM", hello_src] + flags, cwd=tmp, env=env)
    if str(source_root) + os.sep in deps.replace("\\\n", " "):
        raise Failure("the example compiled against headers of the source tree:\n" + deps)
    run([gxx, "-std=c++20", *extra, hello_src, "-o", hello] + flags, cwd=tmp, env=env)
    line = "hello from an installed reactor"
    run_env = dict(os.environ)  # a shared library (-Ddefault_library=shared) is found here
    run_env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(libdir), os.environ.get("LD_LIBRARY_PATH", "")) if p)
    out = run([hello], cwd=tmp, env=run_env, stdin_text=line + "\n", timeout=20)
    if line not in out:
        raise Failure(f"the example did not echo its input; it printed:\n{out}")
    print(f"PASS: g++ $(pkg-config --cflags --libs reactor) built the README example against "
          f"the copy staged by meson install ({', '.join(p.name for p in libs)}), and it ran")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", choices=("subproject", "install"))
    parser.add_argument("--source-root", required=True)
    parser.add_argument("--build-root")
    parser.add_argument("--prefix", default="/usr/local")
    parser.add_argument("--libdir", default="lib")
    parser.add_argument("--version", default="")
    parser.add_argument("--sanitize", default="none")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix=f"reactor-consumer-{args.mode}-") as tmp:
        try:
            (test_subproject if args.mode == "subproject" else test_install)(args,
                                                                              pathlib.Path(tmp))
        except Failure as failure:
            print(f"FAIL: {failure}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
