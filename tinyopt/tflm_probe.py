"""Try a model in the TFLM runtime in a child process before tinyopt loads it in its own.

TFLM's C++ code reads the flatbuffer without verifying it: a damaged .tflite whose tables
still parse in Python can make it read out of bounds and kill the process (SIGSEGV). So the
first native load of every model happens in a disposable process: a small single-threaded
server (started once per tinyopt process, it imports nothing but the runtime) forks one child
per model; the child loads the model, allocates its tensors and runs it once on zeros. A child
that dies, or does not finish in time, becomes one TinyoptError; a child that succeeds lets
the caller load the same bytes in-process.

Wire format on the server's stdin/stdout: request = 16-byte little-endian header (model
length, arena size or 0) + model bytes; reply = one JSON line {"status", "detail"}."""
from __future__ import annotations

import hashlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading

from tinyopt.errors import NativeLoadError, TinyoptError  # noqa: F401 (re-exported)

# A corrupt WHILE loop can spin for ever; no valid model of MCU size needs this long.
PROBE_TIMEOUT_S = 60.0
_HEADER = struct.Struct("<QQ")

_server: subprocess.Popen | None = None
_lock = threading.Lock()
_passed: set[str] = set()


def check_loads(model_bytes: bytes, arena_size: int | None = None) -> None:
    """Raise NativeLoadError when loading/running MODEL_BYTES kills or hangs the runtime.
    Errors the runtime reports as exceptions are left to the in-process load, which gives
    them their usual message. Each distinct model is probed once per process: once it has
    loaded and run, other arena sizes only change whether allocation succeeds, which the
    runtime reports as an error rather than a crash."""
    sha = hashlib.sha256(model_bytes).hexdigest()
    key = f"{sha}:{arena_size or 0}"
    if sha in _passed or key in _passed:
        return
    with _lock:
        reply = _ask(model_bytes, arena_size or 0)
    status, detail = reply.get("status"), reply.get("detail", "")
    if status in ("ok", "error"):
        # a run that completed vouches for the model; a refusal only for this arena size
        _passed.add(sha if status == "ok" else key)
        return
    if status == "timeout":
        raise NativeLoadError(f"the TFLM runtime did not finish loading and running the model in "
                              f"{PROBE_TIMEOUT_S:.0f} s (a damaged flatbuffer, or a loop that never ends)",
                              "copy or convert the model again; `tinyopt analyze` shows its structure")
    raise NativeLoadError(f"the TFLM runtime crashed on this model ({detail}): its tables read as valid, so "
                          "either the flatbuffer is damaged in a way they do not show or it holds an operator "
                          "form this tflite-micro build aborts on",
                          "convert the model again (`tinyopt convert`); if a fresh conversion crashes too, "
                          "report the model")


def _ask(model_bytes: bytes, arena_size: int) -> dict:
    global _server
    for attempt in (1, 2):   # a server that died (killed by the user?) is started again once
        if _server is None or _server.poll() is not None:
            _server = subprocess.Popen([sys.executable, "-m", "tinyopt.tflm_probe"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL)
        try:
            _server.stdin.write(_HEADER.pack(len(model_bytes), arena_size) + model_bytes)
            _server.stdin.flush()
            line = _server.stdout.readline()
            if line:
                return json.loads(line)
        except (BrokenPipeError, OSError, ValueError):
            pass
        _server.kill()
        _server = None
    raise TinyoptError("the TFLM runtime's helper process does not answer",
                       "check the tflite-micro installation (`tinyopt doctor`)")


# ---------------------------------------------------------------- server side

def _child(model_bytes: bytes, arena_size: int, report_fd: int) -> None:
    """Runs in the forked child: load, allocate, invoke once on zeros."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)   # TFLM logs its complaints on fd 2; the in-process load shows them
    status, detail = "ok", ""
    try:
        import numpy as np
        from tflite_micro.python.tflite_micro import runtime
        kwargs = {"arena_size": arena_size} if arena_size else {}
        interp = runtime.Interpreter.from_bytes(model_bytes, **kwargs)
        d = interp.get_input_details(0)
        interp.set_input(np.zeros(d["shape"], d["dtype"]), 0)
        interp.invoke()
    except Exception as err:   # an orderly refusal: the in-process load reports it
        status, detail = "error", f"{type(err).__name__}: {str(err)[:200]}"
    os.write(report_fd, json.dumps({"status": status, "detail": detail}).encode())
    os._exit(0)


def _read_exact(stream, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _probe_once(model_bytes: bytes, arena_size: int) -> dict:
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(rfd)
        try:
            _child(model_bytes, arena_size, wfd)
        finally:
            os._exit(70)
    os.close(wfd)
    ready, _, _ = select.select([rfd], [], [], PROBE_TIMEOUT_S)
    if not ready:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(rfd)
        return {"status": "timeout", "detail": ""}
    chunks = []
    while True:
        chunk = os.read(rfd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(rfd)
    _, wstatus = os.waitpid(pid, 0)
    text = b"".join(chunks)
    if os.WIFSIGNALED(wstatus):
        sig = os.WTERMSIG(wstatus)
        return {"status": "signal", "detail": signal.Signals(sig).name}
    if not text:
        return {"status": "signal", "detail": f"exit status {os.WEXITSTATUS(wstatus)}"}
    return json.loads(text)


def serve() -> None:
    # Imported once here, so that every forked child starts with the runtime loaded.
    import numpy  # noqa: F401
    from tflite_micro.python.tflite_micro import runtime  # noqa: F401
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = _read_exact(stdin, _HEADER.size)
        if header is None:
            return
        size, arena = _HEADER.unpack(header)
        model = _read_exact(stdin, size)
        if model is None:
            return
        stdout.write(json.dumps(_probe_once(model, arena)).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    serve()
