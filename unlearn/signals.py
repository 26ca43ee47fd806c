"""SIGTERM and SIGINT end a command with a documented exit status and one line (issue #27).

:func:`install` (the ``unlearn`` command calls it first) makes both signals raise :class:`Interrupted` (a
``KeyboardInterrupt``) at once, wherever the program is: Lightning's trainer then runs every callback's
``on_exception`` (``RunStatus`` writes ``"interrupted"``), tears down and calls ``sys.exit(1)``; the command
turns that into the signal's own status (:func:`exit_status`): **130** after SIGINT (Ctrl-C), **143** after
SIGTERM (the shell's 128 + signal number), with one line ``error: interrupted by SIGTERM ...``.

Without it, Lightning finishes the current batch on SIGTERM and raises ``SIGTERMException``, a ``SystemExit``
without a code: the process exited 0 and ``unlearn fit && unlearn push`` went on with half-trained adapters.
"""

from __future__ import annotations

import logging
import signal
import threading

#: exit status after SIGINT / SIGTERM (128 + the signal's number, as a shell reports a process it killed)
EXIT_SIGINT = 128 + int(signal.SIGINT)
EXIT_SIGTERM = 128 + int(signal.SIGTERM)

_received: list[int] = []


class Interrupted(KeyboardInterrupt):
    """Raised by the handler of SIGTERM or SIGINT; ``signum`` says which."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _handler(signum: int, frame: object) -> None:
    if _received:  # a second signal while shutting down: let the shutdown finish
        return
    _received.append(signum)
    raise Interrupted(signum)


class _QuietShutdown(logging.Filter):
    # Lightning's own "Detected KeyboardInterrupt, attempting graceful shutdown ..." / "Received SIGTERM": the
    # command says it in its one line
    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        return "Detected KeyboardInterrupt" not in text and "Received SIGTERM" not in text


def install() -> dict[int, object]:
    """SIGTERM and SIGINT raise :class:`Interrupted` (main thread only; elsewhere nothing changes). Returns the
    handlers it replaced, for :func:`restore`."""
    _received.clear()
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.trainer.connectors.signal_connector"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _QuietShutdown) for f in logger.filters):
            logger.addFilter(_QuietShutdown())
    return previous


def restore(previous: dict[int, object]) -> None:
    """Put back the handlers :func:`install` replaced (a command run inside a longer-lived process)."""
    for signum, handler in previous.items():
        if handler is not None:
            signal.signal(signum, handler)


def received() -> int | None:
    """The signal number this process was interrupted by, if any."""
    return _received[0] if _received else None


def exit_status(signum: int | None) -> int:
    """130 for SIGINT (and a KeyboardInterrupt not from a signal), 143 for SIGTERM."""
    return EXIT_SIGTERM if signum == signal.SIGTERM else EXIT_SIGINT


def message(signum: int | None) -> str:
    """The one line the command ends with after a signal."""
    name = signal.Signals(signum).name if signum else "SIGINT"
    return (
        f'error: interrupted by {name} (exit status {exit_status(signum)}); run_status.json says "interrupted". '
        "Fix: continue with the same command and --ckpt_path last"
    )
