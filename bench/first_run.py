"""First run: time from `./scripts/run` to the UI address on a fresh clone, and how quiet it stays.

    python bench/first_run.py                 # first + second start, 5 minutes of steady state
    python bench/first_run.py --quick         # 1 minute of steady state
    python bench/first_run.py --overlay pipelines/devstack.py ...   # uncommitted files on top of HEAD
    python bench/first_run.py --working-tree  # every uncommitted change on top of HEAD

A fresh `git worktree add --detach` copy of HEAD in a temp dir (removed afterwards) is started twice
with `./scripts/run` on free loopback ports, as a developer would after cloning:

- first start: no `.venv`, so venv creation and the pinned install are included (pip's cache and the
  machine's wheel folders are what they are: note them when comparing machines); stopped once the UI
  address is printed;
- second start: the venv exists; after the UI address the console output is recorded for
  `--steady-s` seconds (default 300) with nothing going wrong, then the stack is stopped.

Figures: `first_start_to_ui_s`, `first_install_s` (to the first `start [1/` line), `second_start_to_ui_s`,
`second_history_s` (the history simulation inside it), `steady_console_lines`, `steady_lines_per_min`,
`steady_max_lines_in_a_minute`, `steady_warning_lines`, the log file's size and whether it holds any Dagster
beta/preview/supersession notice or the "dagster.yaml in the current folder" notice (`log_file_*`), the load
average before and after, and which commit was measured. Targets (issue 8): second start <= 30 s, <= 10 console lines a minute. The processes
started here are stopped here, by their own process group. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UI_LINE = re.compile(r"Dagster UI: (http://\S+)")
HISTORY_DONE = re.compile(r"history done in (\d+) s")
ALARM = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b|Warning:")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class Run:
    """`./scripts/run` in its own process group; every output line with its time since the start."""

    def __init__(self, clone: Path, home: Path, args: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        env["PIPELINES_HOME"] = str(home)
        self.lines: list[tuple[float, str]] = []
        self.started = time.monotonic()
        self.proc = subprocess.Popen(["./scripts/run", *args], cwd=clone, env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            self.lines.append((time.monotonic() - self.started, line))
            print(f"    | {line}", file=sys.stderr, flush=True)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> float:
        """Seconds from the start to the first line matching `pattern`."""
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for t, line in self.lines[seen:]:
                if pattern.search(line):
                    return t
            seen = len(self.lines)
            if self.proc.poll() is not None and not self.reader.is_alive():
                raise SystemExit(f"./scripts/run exited with {self.proc.returncode} before {pattern.pattern!r}")
            time.sleep(0.2)
        raise SystemExit(f"no {pattern.pattern!r} within {timeout:.0f} s")

    def first(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        for _, line in self.lines:
            if m := pattern.search(line):
                return m
        return None

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # the group this bench started: pipelines-dev and dagster dev
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.reader.join(timeout=10)
        return self.proc.returncode


def changed_files() -> list[str]:
    """Files of this working tree that differ from HEAD: modified, added, deleted, untracked."""
    out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "-z"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    files, entries = [], iter(out.split("\0"))
    for entry in entries:
        if len(entry) > 3:
            files.append(entry[3:])
            if entry[0] in "RC":  # a rename or copy: the source path follows as its own entry
                files.append(next(entries, ""))
    return [f for f in files if f and not f.startswith(("data/", ".venv/"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="60 s of steady state instead of 300")
    ap.add_argument("--steady-s", type=float, default=None, help="seconds of steady state to record")
    ap.add_argument("--commit", default="HEAD", help="what to check out in the worktree")
    ap.add_argument("--overlay", nargs="*", default=[],
                    help="repository-relative files copied from this working tree over the checkout "
                         "(measures uncommitted changes)")
    ap.add_argument("--overlay-root", type=Path, default=ROOT, help="where --overlay files are taken from")
    ap.add_argument("--working-tree", action="store_true",
                    help="overlay every file this working tree adds, changes or deletes (git status)")
    ap.add_argument("--timeout-s", type=float, default=900, help="longest wait for the UI address")
    args = ap.parse_args()
    steady_s = args.steady_s if args.steady_s is not None else (60.0 if args.quick else 300.0)

    commit = subprocess.run(["git", "rev-parse", args.commit], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="first-run-"))
    clone = tmp / "clone"
    load_before = os.getloadavg()
    result: dict[str, object] = {"commit": commit[:12], "overlay": args.overlay, "cores": os.cpu_count(),
                                 "loadavg_before": [round(x, 2) for x in load_before], "steady_s": steady_s}
    subprocess.run(["git", "worktree", "add", "--detach", str(clone), commit], cwd=ROOT, check=True,
                   capture_output=True)
    try:
        overlay = list(args.overlay)
        if args.working_tree:
            overlay += changed_files()
            result["overlay"] = f"working tree: {len(overlay)} files"
        for rel in overlay:
            source = args.overlay_root / rel
            if source.is_file():
                (clone / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, clone / rel)
            elif not source.exists() and (clone / rel).is_file():
                (clone / rel).unlink()
        ports = free_ports(4)
        run_args = ["--port", str(ports[0]), "--centra-port", str(ports[1]), "--newstore-port", str(ports[2]),
                    "--intake-port", str(ports[3])]

        log(f"first start (fresh clone of {commit[:12]}, no .venv) in {clone}")
        first = Run(clone, tmp / "home", run_args)
        try:
            result["first_start_to_ui_s"] = round(first.wait_for(UI_LINE, args.timeout_s), 1)
            result["first_install_s"] = round(first.wait_for(re.compile(r"^start \[1/"), 5), 1)
        finally:
            first.stop()

        log("second start (.venv exists)")
        second = Run(clone, tmp / "home", run_args)
        try:
            t_ui = second.wait_for(UI_LINE, args.timeout_s)
            result["second_start_to_ui_s"] = round(t_ui, 1)
            if m := second.first(HISTORY_DONE):
                result["second_history_s"] = int(m.group(1))
            result["second_startup_console_lines"] = sum(1 for t, _ in second.lines if t <= t_ui)
            log(f"UI up after {t_ui:.1f} s; recording the console for {steady_s:.0f} s")
            time.sleep(steady_s)
            steady = [(t - t_ui, line) for t, line in second.lines if t > t_ui]
            steady = [(t, line) for t, line in steady if t <= steady_s]
            # the blank line printed right after the address belongs to it
            counted = [(t, line) for t, line in steady if line.strip() or t > 1]
            per_minute = [0] * max(1, int(steady_s // 60))
            for t, _ in counted:
                per_minute[min(len(per_minute) - 1, int(t // 60))] += 1
            result["steady_console_lines"] = len(counted)
            result["steady_lines_per_min"] = round(len(counted) / (steady_s / 60), 1)
            result["steady_max_lines_in_a_minute"] = max(per_minute)
            result["steady_lines_by_minute"] = per_minute
            alarms = [line for _, line in counted if ALARM.search(line)]
            result["steady_warning_lines"] = len(alarms)
            result["steady_sample"] = [line[:160] for _, line in counted[:5]]
            result["still_running"] = second.proc.poll() is None
            log_file = tmp / "home" / "devstack" / "devstack.log"
            if log_file.exists():
                text = log_file.read_text(errors="replace")
                result["log_file_lines"] = text.count("\n")
                result["log_file_notices"] = len(re.findall(r"(Beta|Preview|Supersession)Warning", text))
                result["log_file_dagster_yaml_notice"] = "in the current folder" in text
        finally:
            result["second_exit_code"] = second.stop()
    finally:
        result["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        subprocess.run(["git", "worktree", "remove", "--force", str(clone)], cwd=ROOT, capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
    result["targets_met"] = (float(result.get("second_start_to_ui_s", 1e9)) <= 30
                             and float(result.get("steady_lines_per_min", 1e9)) <= 10)
    print(json.dumps(result, sort_keys=True), flush=True)


if __name__ == "__main__":
    main()
