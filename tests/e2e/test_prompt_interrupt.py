"""Ctrl-C at a confirmation question ends the command, even when the interrupt lands in a finalizer.

Python discards an exception raised while the garbage collector runs a finalizer ("Exception
ignored in ..."). A KeyboardInterrupt that lands there is lost, and a question asked with
Python's default handler then waits for an answer. CI saw ``apply`` hang once at "Apply these
changes?". ``cli._ask`` exits from its handler instead. This test puts the interrupt inside a
running finalizer on purpose, in a real process whose stdin is a terminal.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import textwrap

import pytest

_SCRIPT = textwrap.dedent(
    """
    import gc, os, signal, threading, time
    import typer
    from fortiauto import cli

    class Finalizer:
        def __init__(self):
            self.cycle = self
        def __del__(self):
            time.sleep(1.0)  # the interrupt arrives while this runs

    def confirm(question, err=False):
        Finalizer()
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()
        gc.collect()
        return input(question)  # the terminal never answers

    typer.confirm = confirm
    print("answer:", cli._ask("Apply these changes?"), flush=True)
    """
)


@pytest.mark.timeout(60)
def test_ctrl_c_in_a_finalizer_during_the_question_still_exits_130():
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SCRIPT],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            raise AssertionError(f"the question kept waiting after Ctrl-C; stderr:\n{err}") from None
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 130, err
    assert "aborted at the prompt; nothing was changed" in err
    assert "answer:" not in out
