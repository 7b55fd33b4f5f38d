#!/usr/bin/env python3
"""Fuzz tinyopt's model reading with damaged .tflite files.

Mutations of a valid int8 model (bit flips, random bytes, 32-bit words set to huge, negative
or off-by-a-little values, truncation, splices of one region over another) go through what
`tinyopt analyze --board B` and `tinyopt generate --backend aot` run: the analysis (reader,
audit, exact arena in the TFLM runtime) and the aot lowering. Every case must end as accepted,
or rejected with a TinyoptError (one line and exit 2 at the CLI); anything else is a finding:
  crash     the worker process died (a signal: native code read out of bounds)
  internal  an exception that is not a TinyoptError (a Python bug on hostile input)
  hang      no answer within --case-timeout seconds

Cases run in a worker process that is restarted after a crash or a hang, so one finding does
not end the campaign. Findings are written as .tflite files to --save for reproduction.

  python scripts/fuzz_tflite.py --cases 20000                 # the demo model, seed 0
  python scripts/fuzz_tflite.py --model m.tflite --cases 500 --seed 7 --save /tmp/findings
"""
from __future__ import annotations

import argparse
import json
import random
import struct
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MUTATIONS = ("bitflip", "bytes", "word", "truncate", "splice")
INTERESTING_WORDS = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0x10000, 0x7FFF)


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One damaged copy of DATA and the name of the mutation (the header's first 8 bytes are
    kept on most cases, so that mutations reach past the identifier check)."""
    buf = bytearray(data)
    kind = rng.choice(MUTATIONS)
    lo = 8 if rng.random() < 0.95 else 0
    if kind == "bitflip":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(lo, len(buf))
            buf[i] ^= 1 << rng.randrange(8)
    elif kind == "bytes":
        start = rng.randrange(lo, len(buf))
        for i in range(start, min(len(buf), start + rng.randint(1, 16))):
            buf[i] = rng.randrange(256)
    elif kind == "word":
        for _ in range(rng.randint(1, 3)):
            i = rng.randrange(max(lo, 0) // 4, len(buf) // 4) * 4
            old = struct.unpack_from("<I", buf, i)[0]
            new = rng.choice(INTERESTING_WORDS + ((old + rng.randint(-64, 64)) & 0xFFFFFFFF,
                                                  rng.getrandbits(32)))
            struct.pack_into("<I", buf, i, new)
    elif kind == "truncate":
        buf = buf[:rng.randrange(0, len(buf))]
    else:  # splice: copy one region over another
        n = rng.randint(4, 256)
        src, dst = rng.randrange(0, len(buf)), rng.randrange(lo, len(buf))
        chunk = buf[src:src + n]
        buf[dst:dst + len(chunk)] = chunk
    return kind, bytes(buf)


# ---------------------------------------------------------------- worker (one process)

def _run_case(data: bytes, board, tmp: Path) -> tuple[str, str]:
    from tinyopt.analysis import analyze
    from tinyopt.codegen.aot import model_library
    from tinyopt.errors import TinyoptError
    try:
        analysis = analyze(data, board, other_boards=[])
        if analysis.audit.errors_for("aot"):
            return "rejected", "audit"
        model_library(data)
        return "accepted", ""
    except TinyoptError as err:
        line = err.one_line()
        if "\n" in line or not line.startswith("error: "):
            return "internal", f"malformed message: {line!r}"
        return "rejected", line[:160]
    except Exception as err:  # the finding this script is for
        import traceback
        where = traceback.extract_tb(err.__traceback__)[-1]
        return "internal", f"{type(err).__name__}: {str(err)[:120]} at {Path(where.filename).name}:{where.lineno}"


def worker(board_name: str) -> None:
    """Read length-prefixed cases on stdin, answer one JSON line each."""
    import tempfile

    from tinyopt.boards import load_board
    board = load_board(board_name)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    with tempfile.TemporaryDirectory() as tmp:
        while True:
            head = stdin.read(4)
            if len(head) < 4:
                return
            (n,) = struct.unpack("<I", head)
            data = stdin.read(n)
            outcome, detail = _run_case(data, board, Path(tmp))
            stdout.write(json.dumps([outcome, detail]).encode() + b"\n")
            stdout.flush()


# ---------------------------------------------------------------- campaign

@dataclass
class Campaign:
    cases: int = 0
    outcomes: Counter = field(default_factory=Counter)
    by_mutation: Counter = field(default_factory=Counter)
    findings: list = field(default_factory=list)      # (outcome, mutation, detail, case number)
    rejections: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def failures(self) -> int:
        return sum(self.outcomes[k] for k in ("crash", "internal", "hang"))

    def summary(self) -> str:
        parts = ", ".join(f"{k} {self.outcomes[k]}" for k in ("accepted", "rejected", "crash", "internal", "hang"))
        return f"{self.cases} cases in {self.seconds:.0f} s: {parts}"


class _Worker:
    def __init__(self, board: str):
        self.proc = subprocess.Popen([sys.executable, __file__, "--worker", "--board", board],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def ask(self, data: bytes, timeout: float) -> tuple[str, str]:
        import select
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            return "crash", f"worker gone (exit {self.proc.wait()})"
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.proc.kill()
            self.proc.wait()
            return "hang", f"no answer in {timeout:.0f} s"
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            return "crash", f"worker died (exit {code})"
        return tuple(json.loads(line))

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.alive():
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def run_campaign(model: bytes, cases: int, seed: int = 0, board: str = "qemu-m4",
                 case_timeout: float = 90.0, save: Path | None = None, progress=None) -> Campaign:
    rng = random.Random(seed)
    result = Campaign()
    start = time.monotonic()
    w = _Worker(board)
    try:
        for n in range(cases):
            kind, data = mutate(model, rng)
            outcome, detail = w.ask(data, case_timeout)
            result.cases += 1
            result.outcomes[outcome] += 1
            result.by_mutation[kind] += 1
            if outcome == "rejected":
                result.rejections[detail.split("(")[0][:70]] += 1
            if outcome in ("crash", "internal", "hang"):
                result.findings.append((outcome, kind, detail, n))
                if save is not None:
                    save.mkdir(parents=True, exist_ok=True)
                    (save / f"case{n:06d}-{outcome}.tflite").write_bytes(data)
            if not w.alive():
                w = _Worker(board)
            if progress:
                progress(n + 1, result)
    finally:
        w.close()
        result.seconds = time.monotonic() - start
    return result


def _demo_model() -> bytes:
    """The demo model's int8 .tflite, converted once into the tinyopt cache."""
    from tinyopt.paths import cache_dir
    path = cache_dir() / "fuzz-seed-demo_int8.tflite"
    if not path.is_file():
        out = cache_dir() / "fuzz-seed-convert"
        subprocess.run([sys.executable, "-m", "tinyopt", "convert", "-o", str(out), "--force"],
                       check=True, capture_output=True, timeout=900)
        (out / "model_int8.tflite").replace(path)
    return path.read_bytes()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, help="seed .tflite (default: the demo model, int8)")
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--board", default="qemu-m4")
    ap.add_argument("--case-timeout", type=float, default=90.0)
    ap.add_argument("--save", type=Path, help="write each finding's .tflite here")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(args.board)
        return 0
    model = args.model.read_bytes() if args.model else _demo_model()

    def tick(n, res):
        if n % 500 == 0 or n == args.cases:
            print(f"  {res.cases} cases, {res.failures} findings", file=sys.stderr, flush=True)

    res = run_campaign(model, args.cases, args.seed, args.board, args.case_timeout, args.save, tick)
    if args.json:
        print(json.dumps({"cases": res.cases, "outcomes": dict(res.outcomes), "seconds": round(res.seconds, 1),
                          "by_mutation": dict(res.by_mutation), "findings": res.findings,
                          "rejections": res.rejections.most_common(20)}, indent=2))
    else:
        print(res.summary())
        for reason, count in res.rejections.most_common(12):
            print(f"  rejected x{count}: {reason}")
        for f in res.findings[:50]:
            print(f"  FINDING {f[0]} ({f[1]}, case {f[3]}): {f[2]}")
    return 1 if res.failures else 0


if __name__ == "__main__":
    sys.exit(main())
