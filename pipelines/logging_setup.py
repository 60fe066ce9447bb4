"""Console and log file of `pipelines-dev`: INFO to the console, everything (DEBUG) to a file.

- `configure(log_file)`: the root logger at DEBUG; a console handler at INFO; a file handler at DEBUG;
  Python warnings captured into logging (so a new deprecation is seen, on the console and in the file).
- `OutputFilter`: a thread that reads a child process' merged stdout/stderr (`dagster dev`, its daemon,
  code server and run workers) line by line, writes every line to the log file and passes to the console
  only lines at or above a level (WARNING by default: Dagster's INFO sensor ticks and DEBUG run events
  would otherwise print some 80 lines a minute).
- `RepeatLimiter`: a message repeated in a loop shows on the console 3 times a minute, not 30 times a second.
- `HistoryProgress`: "day n of N, p %" while the trading history is simulated.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TextIO

CONSOLE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FILE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s [%(threadName)s] %(message)s"
#: Loggers that log every HTTP request at DEBUG/INFO (thousands while history is simulated).
CHATTY_LOGGERS = ("httpx", "httpcore", "hpack", "urllib3", "asyncio", "multipart")
#: Logger of the lines relayed from the `dagster dev` process tree.
DAGSTER_OUTPUT_LOGGER = "dagster.dev"
_MARK = "_pipelines_logging"  # set on the handlers installed here, so configure() can be called again

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_LEVEL_NAMES = "DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL"
# Dagster's own format: "2026-12-01 15:09:25 +0000 - dagster.daemon.SensorDaemon - INFO - ..."
_DAGSTER_LINE = re.compile(rf"^\d{{4}}-\d\d-\d\d[ T][\d:.,]+(?: ?[+-]\d{{2}}:?\d{{2}}|Z)? - \S+ - ({_LEVEL_NAMES}) - ")
# Python's default logging format ("WARNING:root:...") and uvicorn's ("INFO:     Started ...").
_PLAIN_LEVEL = re.compile(rf"^({_LEVEL_NAMES}):")
# A Python warning as printed by `warnings.showwarning`: "/path/file.py:12: SomeWarning: ..."
_PY_WARNING = re.compile(r"^\S.*:\d+: \w*Warning: ")
_TRACEBACK = "Traceback (most recent call last):"
_ALARMING = re.compile(r"error|exception|fatal|failed|failure|warning|critical|killed|segmentation", re.I)


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def _level(name: str) -> int:
    return {"WARN": logging.WARNING, "FATAL": logging.CRITICAL}.get(name) or logging.getLevelName(name)


class LineClassifier:
    """The level of each line of a child process' output.

    A line carrying a level (Dagster's or Python's logging format) has that level; a Python warning is
    WARNING; a traceback is ERROR up to and including its final exception line; an indented or blank
    line continues the previous line's record (a warning's source line, a multi-line message); any other
    line is INFO, or WARNING when it reads like a problem ("error", "failed", ...), so nothing alarming
    is hidden because it came without a level.
    """

    def __init__(self) -> None:
        self._previous = logging.INFO
        self._in_traceback = False

    def __call__(self, line: str) -> int:
        text = strip_ansi(line).rstrip("\r\n")
        if self._in_traceback:
            if not text or text[0].isspace() or text.startswith(("During handling", "The above exception")):
                return logging.ERROR
            self._in_traceback = False  # the final "SomeError: message" line
            self._previous = logging.ERROR
            return logging.ERROR
        if text.startswith(_TRACEBACK):
            self._in_traceback = True
            self._previous = logging.ERROR
            return logging.ERROR
        if not text.strip() or text[0].isspace():
            return self._previous
        if m := _DAGSTER_LINE.match(text) or _PLAIN_LEVEL.match(text):
            level = _level(m.group(1))
        elif _PY_WARNING.match(text):
            level = logging.WARNING
        else:
            level = logging.WARNING if _ALARMING.search(text) else logging.INFO
        self._previous = level
        return level


class _Formatter(logging.Formatter):
    """The configured format, except for relayed child-process lines, which carry their own."""

    def __init__(self, fmt: str, *, keep_ansi: bool, repeat_note: bool = False) -> None:
        super().__init__(fmt)
        self.keep_ansi = keep_ansi
        self.repeat_note = repeat_note

    def format(self, record: logging.LogRecord) -> str:
        raw = getattr(record, "raw_line", None)
        if raw is None:
            text = super().format(record)
        elif self.keep_ansi:
            text = raw
        else:
            text = strip_ansi(raw)
        note = getattr(record, REPEAT_NOTE, None) if self.repeat_note else None
        return f"{text}\n  ({note})" if note else text


REPEAT_NOTE = "_pipelines_repeat_note"
_DIGITS = re.compile(r"\d+")


class RepeatLimiter(logging.Filter):
    """The console shows a message at most `limit` times per `window` seconds (messages differing only
    in numbers, such as times and ids, count as the same); the rest go to the log file only, and the
    last one shown says so. One failure repeated in a loop stays readable."""

    def __init__(self, limit: int = 3, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.limit, self.window, self.clock = limit, window, clock
        self._seen: dict[tuple[str, int, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        now = self.clock()
        text = strip_ansi(getattr(record, "raw_line", None) or record.getMessage())
        key = (record.name, record.levelno, _DIGITS.sub("#", text)[:300])
        start, count = self._seen.get(key, (now, 0))
        if now - start > self.window:
            start, count = now, 0
        count += 1
        self._seen[key] = (start, count)
        if len(self._seen) > 2000:
            self._seen = {k: v for k, v in self._seen.items() if now - v[0] <= self.window}
        if count == self.limit:
            setattr(record, REPEAT_NOTE, f"repeated {count} times within {self.window:.0f} s: further ones "
                                         f"for {self.window - (now - start):.0f} s go to the log file only")
        return count <= self.limit


class _DagsterConsoleThreshold(logging.Filter):
    """Relayed Dagster lines reach the console only from `level` up (our own records from INFO)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == DAGSTER_OUTPUT_LOGGER or record.name.startswith(DAGSTER_OUTPUT_LOGGER + "."):
            return record.levelno >= self.level
        return True


def configure(log_file: Path | None, *, console_level: int = logging.INFO,
              dagster_console_level: int = logging.WARNING, console: TextIO | None = None) -> None:
    """INFO (and Dagster's lines from `dagster_console_level`) to the console, DEBUG to `log_file`."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    stream = console if console is not None else sys.stderr
    console_handler = logging.StreamHandler(stream)
    console_handler.setLevel(console_level)
    console_handler.setFormatter(_Formatter(CONSOLE_FORMAT, keep_ansi=_isatty(stream), repeat_note=True))
    console_handler.addFilter(_DagsterConsoleThreshold(dagster_console_level))
    console_handler.addFilter(RepeatLimiter())
    handlers: list[logging.Handler] = [console_handler]
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        file_handler = logging.FileHandler(log_file, encoding="utf-8")
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(_Formatter(FILE_FORMAT, keep_ansi=False))
        handlers.append(file_handler)
    for handler in handlers:
        setattr(handler, _MARK, True)
        root.addHandler(handler)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


def _isatty(stream: IO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class OutputFilter(threading.Thread):
    """Relays a child process' output (bytes, line by line) into logging as `dagster.dev` records.

    With `configure()` in place every line lands in the log file and the console shows those at or
    above its Dagster threshold. Ends when the stream closes (the process and its children exited).
    """

    def __init__(self, source: IO[bytes], logger_name: str = DAGSTER_OUTPUT_LOGGER) -> None:
        super().__init__(name="dagster-output", daemon=True)
        self.source = source
        self.logger = logging.getLogger(logger_name)
        self.classify = LineClassifier()
        self.lines = 0

    def relay(self, line: str) -> None:
        line = line.rstrip("\r\n")
        self.lines += 1
        self.logger.log(self.classify(line), "%s", strip_ansi(line), extra={"raw_line": line})

    def run(self) -> None:
        for raw in iter(self.source.readline, b""):
            self.relay(raw.decode("utf-8", errors="replace"))


class HistoryProgress:
    """`progress(message, fraction)` callback for `Stack.history`: "day n of N, p %".

    On a terminal one line is rewritten in place; otherwise (CI, a pipe) a line is printed each time
    another tenth of the history is done, so a log shows progress without a flood.
    """

    def __init__(self, days: float, stream: TextIO | None = None, step: float = 0.1) -> None:
        self.days = days
        self.stream = stream if stream is not None else sys.stdout
        self.tty = _isatty(self.stream)
        self.step = step
        self._printed = -1
        self._open_line = False
        self.log = logging.getLogger("pipelines.devstack")

    def text(self, message: str, fraction: float) -> str:
        fraction = min(1.0, max(0.0, fraction))
        message = message.removeprefix("history: ")
        total = max(1, round(self.days))
        day = min(total, int(fraction * self.days) + 1)
        return f"  history: day {day} of {total}, {fraction:4.0%}  ({message})"

    def __call__(self, message: str, fraction: float) -> None:
        text = self.text(message, fraction)
        self.log.debug(text.strip())
        if self.tty:
            self.stream.write("\r" + text.ljust(78))
            self.stream.flush()
            self._open_line = True
            return
        bucket = int(min(1.0, max(0.0, fraction)) / self.step + 1e-9)
        if bucket != self._printed:
            self._printed = bucket
            print(text, file=self.stream, flush=True)

    def done(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False
