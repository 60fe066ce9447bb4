"""The first run is quiet and clear: console vs log file, progress, the warning allow-list, --help.

Unit level: no devstack is started here (bench/first_run.py measures a real start).
"""

from __future__ import annotations

import io
import logging
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pipelines import dagster_warnings, devstack, logging_setup

REPO = Path(__file__).resolve().parents[1]

DAGSTER_LINES = [
    "\x1b[32m2026-12-01 15:09:33 +0000\x1b[0m - dagster.daemon.SensorDaemon - \x1b[34mINFO\x1b[0m - "
    "Checking for new runs for sensor: stock_sync_sensor",
    "2026-12-01 15:10:03 +0000 - dagster - DEBUG - stock_sync_job - 63e2c67f - 2050 - RUN_START - Started",
    "\x1b[32m2026-12-01 15:10:04 +0000\x1b[0m - dagster - \x1b[34mWARNING\x1b[0m - sensor stock_sync_sensor is slow",
    "/x/site-packages/dagster/_core/foo.py:12: SomeNewWarning: this changes in 2.0",
    "  return fn(*args, **kwargs)",
    "",
    "2026-12-01 15:10:05 +0000 - dagster - ERROR - stock_sync_job - 63e2c67f - STEP_FAILURE - boom",
    "Traceback (most recent call last):",
    '  File "x.py", line 1, in <module>',
    "ValueError: bad value",
    "2026-12-01 15:10:06 +0000 - dagster - DEBUG - stock_sync_job - 63e2c67f - STEP_START",
    "Serving dagster-webserver on http://127.0.0.1:3000 in process 12",
]


@pytest.fixture
def logs(tmp_path: Path):  # noqa: ANN201
    console = io.StringIO()
    log_file = tmp_path / "devstack" / "devstack.log"
    logging_setup.configure(log_file, console=console)
    yield console, log_file
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "_pipelines_logging", False)]:
        root.removeHandler(handler)
        handler.close()
    logging.captureWarnings(False)


def test_debug_goes_to_the_file_and_not_the_console(logs) -> None:  # noqa: ANN001
    console, log_file = logs
    log = logging.getLogger("pipelines.devstack")
    log.debug("a debug detail")
    log.info("an info line")
    log.warning("a warning")
    text = log_file.read_text()
    assert "a debug detail" in text and "an info line" in text and "a warning" in text
    assert "a debug detail" not in console.getvalue()
    assert "an info line" in console.getvalue() and "a warning" in console.getvalue()


def test_chatty_http_loggers_stay_out_of_both(logs) -> None:  # noqa: ANN001
    console, log_file = logs
    logging.getLogger("httpx").info("HTTP Request: POST http://127.0.0.1:8081/graphql")
    assert "HTTP Request" not in console.getvalue() + log_file.read_text()


def test_python_warnings_are_logged_not_hidden(logs) -> None:  # noqa: ANN001
    console, log_file = logs
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("some library changed", FutureWarning, stacklevel=1)
    assert "some library changed" in console.getvalue()
    assert "some library changed" in log_file.read_text()


def test_line_classifier() -> None:
    classify = logging_setup.LineClassifier()
    levels = [logging.getLevelName(classify(line)) for line in DAGSTER_LINES]
    assert levels == ["INFO", "DEBUG", "WARNING", "WARNING", "WARNING", "WARNING", "ERROR", "ERROR", "ERROR",
                      "ERROR", "DEBUG", "INFO"]
    assert classify("something failed badly") == logging.WARNING


def test_output_filter_passes_warnings_and_errors_and_drops_debug(logs) -> None:  # noqa: ANN001
    console, log_file = logs
    relay = logging_setup.OutputFilter(io.BytesIO("\n".join(DAGSTER_LINES).encode() + b"\n"))
    relay.run()
    shown = console.getvalue()
    kept = log_file.read_text()
    assert relay.lines == len(DAGSTER_LINES)
    for line in DAGSTER_LINES:  # every line in the file, without colour codes
        assert logging_setup.strip_ansi(line) in kept
    assert "\x1b[" not in kept and "\x1b[" not in shown  # StringIO is no terminal
    assert "RUN_START" not in shown and "STEP_START" not in shown  # DEBUG
    assert "Checking for new runs" not in shown and "Serving dagster-webserver" not in shown  # INFO
    assert "sensor stock_sync_sensor is slow" in shown  # WARNING
    assert "SomeNewWarning: this changes in 2.0" in shown and "return fn(*args" in shown
    assert "STEP_FAILURE - boom" in shown and "ValueError: bad value" in shown and 'File "x.py"' in shown


def test_dagster_info_on_the_console_when_asked(tmp_path: Path) -> None:
    console = io.StringIO()
    logging_setup.configure(tmp_path / "x.log", console=console, dagster_console_level=logging.INFO)
    try:
        logging_setup.OutputFilter(io.BytesIO("\n".join(DAGSTER_LINES[:2]).encode())).run()
        assert "Checking for new runs" in console.getvalue() and "RUN_START" not in console.getvalue()
    finally:
        logging_setup.configure(None, console=io.StringIO())
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "_pipelines_logging", False)]:
            root.removeHandler(handler)
        logging.captureWarnings(False)


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        devstack.main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    flat = " ".join(out.split())  # argparse wraps to the terminal width
    for default in ("(default: 3000)", "(default: 2000)", "(default: 3)", "(default: 8081)", "(default: 8090)",
                    "(default: warning)"):
        assert default in flat, default
    # the module docstring keeps its own line breaks (RawDescriptionHelpFormatter)
    assert "Starts the Centra and NewStore simulators, the intake service (the simulators deliver their event\n" in out
    assert "devstack.log" in out


class _NewStack:
    def __init__(self) -> None:
        self.calls: list[tuple[int, object]] = []

    def history(self, days: int, progress=None) -> dict[str, int]:  # noqa: ANN001
        self.calls.append((days, progress))
        if progress is not None:
            for i in range(1, 13):
                progress(f"simulated hour {i}", i / 12)
        return {"store_sales": 1}


class _OldStack:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def history(self, days: int) -> dict[str, int]:
        self.calls.append(days)
        return {"store_sales": 1}


def test_history_progress_with_and_without_the_callback(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    new = _NewStack()
    monkeypatch.setattr(devstack, "Stack", _NewStack)
    assert devstack._history(new, 3) == {"store_sales": 1}
    out = capsys.readouterr().out
    assert new.calls and new.calls[0][1] is not None
    assert "day 1 of 3" in out and "day 3 of 3, 100%" in out
    assert len(out.splitlines()) <= 11  # not a terminal: one line per tenth, not per simulated hour

    old = _OldStack()
    monkeypatch.setattr(devstack, "Stack", _OldStack)
    assert devstack._history(old, 3) == {"store_sales": 1}
    assert old.calls == [3]


def test_history_progress_text() -> None:
    p = logging_setup.HistoryProgress(3, stream=io.StringIO())
    assert "day 1 of 3,   0%" in p.text("start", 0.0)
    assert "day 2 of 3,  50%" in p.text("half", 0.5)
    assert "day 3 of 3, 100%" in p.text("end", 1.0)
    assert "(traded up to 12:00)" in p.text("history: traded up to 12:00", 0.9)


# ------------------------------------------------------------------ the warning allow-list

_RECORD_WARNINGS = textwrap.dedent("""
    import json, warnings
    import pipelines.dagster_warnings  # installs the allow-list; undone next, to see what loading raises
    warnings.resetwarnings()
    warnings.simplefilter("always")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from pipelines.definitions import defs
        defs.get_repository_def()  # resolving raises some too (as the code server does)
    print(json.dumps([[type(w.message).__mro__[0].__name__, [c.__name__ for c in type(w.message).__mro__],
                       str(w.message)] for w in caught]))
""")


def _warnings_raised_by_loading_definitions(tmp_path: Path) -> list[tuple[str, list[str], str]]:
    env = {**os.environ, "PIPELINES_HOME": str(tmp_path)}
    env.pop("PYTHONWARNINGS", None)
    out = subprocess.run([sys.executable, "-c", _RECORD_WARNINGS], env=env, cwd=REPO, capture_output=True,
                         text=True, timeout=300, check=True).stdout
    import json

    return [tuple(x) for x in json.loads(out.strip().splitlines()[-1])]


DAGSTER_NOTICES = {"BetaWarning", "PreviewWarning", "SupersessionWarning"}


def test_allow_list_is_exact(tmp_path: Path) -> None:
    """Every entry is still needed (no stale entry), and loading the definitions raises no Dagster
    beta/preview/supersession notice outside the list."""
    raised = _warnings_raised_by_loading_definitions(tmp_path)
    allowed = [e for e in dagster_warnings.ALLOWED if e.raised_by == "definitions"]
    for entry in allowed:
        assert any(msg.startswith(entry.message) for _, _, msg in raised), f"stale allow-list entry: {entry.feature}"
    unlisted = {msg for name, mro, msg in raised
                if DAGSTER_NOTICES & set(mro) and not any(msg.startswith(e.message) for e in allowed)}
    assert not unlisted, f"Dagster notices not in pipelines/dagster_warnings.py (add with a reason, or fix): {unlisted}"


def test_allow_list_entries_have_reasons_and_are_pythonwarnings_safe() -> None:
    for entry in dagster_warnings.ALLOWED:
        assert entry.reason.strip() and entry.feature.strip()
        assert ":" not in entry.message and "," not in entry.message, entry.message
        assert issubclass(entry.category, Warning)


def test_pythonwarnings_value_is_accepted_and_silences_only_the_list() -> None:
    value = dagster_warnings.pythonwarnings()
    code = ("import warnings\n"
            "warnings.warn('Function `dev_command` is superseded and its usage is discouraged.', FutureWarning)\n"
            "warnings.warn('Function `other` is superseded.', FutureWarning)\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONWARNINGS": value},
                          capture_output=True, text=True, timeout=60, check=True)
    assert "Invalid -W option" not in proc.stderr
    assert "dev_command" not in proc.stderr and "`other` is superseded" in proc.stderr
    assert dagster_warnings.pythonwarnings("error::ResourceWarning").startswith("error::ResourceWarning,ignore:")


def test_the_dagster_dev_entry_is_still_needed() -> None:
    """`dagster dev` is still marked superseded (else its entry is stale), and `dg` is not installed."""
    from dagster._annotations import is_superseded
    from dagster._cli.dev import dev_command

    assert is_superseded(dev_command.callback)
    assert not (Path(sys.executable).parent / "dg").exists()


# ------------------------------------------------------------------ scripts/_setup.sh


def _fake_project(tmp_path: Path, pip_script: str) -> Path:
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "_setup.sh").write_text((REPO / "scripts" / "_setup.sh").read_text())
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (tmp_path / "constraints.txt").write_text("alpha==1\nbeta==2\n")
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/usr/bin/env bash\n" + pip_script)
    python.chmod(python.stat().st_mode | stat.S_IEXEC)
    return tmp_path


def _setup(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", "set -euo pipefail; SETUP_STEPS=2; source scripts/_setup.sh; setup_venv"],
                          cwd=project, capture_output=True, text=True, timeout=60)


def test_setup_shows_steps_and_keeps_pip_noise_in_the_log(tmp_path: Path) -> None:
    project = _fake_project(tmp_path, textwrap.dedent("""
        echo "WARNING: Location 'file:///opt/pypi/simple' is ignored: it is either a non-existing path"
        case "$*" in *constraints*) echo "Collecting alpha==1"; echo "Collecting beta==2";
                                    echo "Installing collected packages: alpha, beta";; esac
    """))
    first = _setup(project)
    assert first.returncode == 0, first.stderr
    assert "setup [1/2] .venv exists" in first.stdout
    assert "setup [2/2] installing Python packages" in first.stdout
    assert "is ignored" not in first.stdout + first.stderr
    assert "is ignored" in (project / ".venv" / "install.log").read_text()
    again = _setup(project)
    assert again.returncode == 0 and "setup [2/2] Python packages up to date" in again.stdout


def test_setup_prints_the_log_tail_when_pip_fails(tmp_path: Path) -> None:
    project = _fake_project(tmp_path, textwrap.dedent("""
        case "$*" in *constraints*) echo "ERROR: No matching distribution found for alpha==1"; exit 1;; esac
    """))
    result = _setup(project)
    assert result.returncode == 1
    assert "setup failed: pip install failed" in result.stderr
    assert "No matching distribution found for alpha==1" in result.stderr
    assert not list((project / ".venv").glob(".installed-*"))


def test_a_message_repeated_in_a_loop_shows_three_times_a_minute(logs) -> None:  # noqa: ANN001
    console, log_file = logs
    log = logging.getLogger("pipelines.sync.service")
    for i in range(50):
        log.warning("stock sync pass failed: value %d out of range", 40000000000 + i)
    log.warning("a different problem")
    shown = console.getvalue()
    assert shown.count("stock sync pass failed") == 3
    assert "go to the log file only" in shown and "a different problem" in shown
    assert log_file.read_text().count("stock sync pass failed") == 50


def test_repeat_limiter_window_rolls_over() -> None:
    now = [0.0]
    limiter = logging_setup.RepeatLimiter(limit=2, window=60, clock=lambda: now[0])

    def rec(msg: str) -> logging.LogRecord:
        return logging.LogRecord("x", logging.WARNING, __file__, 1, msg, None, None)

    assert [limiter.filter(rec("boom 1")) for _ in range(4)] == [True, True, False, False]
    now[0] = 61.0
    assert limiter.filter(rec("boom 7"))
