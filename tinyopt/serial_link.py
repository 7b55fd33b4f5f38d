"""tinyopt's MLPerf Tiny (EEMBC) protocol client on pyserial, and serial port discovery.

One class, DeviceLink, talks to the device: every read is bounded by a deadline, commands
are retried where that is safe, and whatever goes wrong ends in a LinkError that says
what happened in words (port missing, no answer, link lost, garbled data, device reset)
instead of a hang. Protocol lines start with "m-"; other printable lines (a library's
debug prints) are kept as device log; bytes that are not text mean a wrong baud rate or
a noisy link and stop the exchange."""
from __future__ import annotations

import errno
import os
import re
import time
from dataclasses import dataclass, field

from tinyopt.errors import DeviceReset, LinkError, LinkLost, TinyoptError  # noqa: F401 (re-exported)

READY = "m-ready"
BOOT = "m-init-done"
CHUNK_BYTES = 256          # bytes per "db HEX%" chunk (512 hex digits, the harness takes 1000)
MAX_LOG_LINES = 200        # non-protocol lines tolerated per command before giving up
_FLOATS = re.compile(r"^m-results-\[(.*)\]$")
_INTS = re.compile(r"^m-results-int8-\[(.*)\]$")


@dataclass
class LayerTiming:
    """The raw answer to `layers N%`: totals over N profiled inferences per step, and the
    cost of OVERHEAD_PAIRS empty timer-event pairs measured on the device just before."""
    runs: int
    steps: list            # (step, operator index, opcode, cycles, us), totals over the runs
    overhead_pairs: int
    overhead_cycles: int
    overhead_us: int
    total_cycles: int
    total_us: int


_LAYERS_HEAD = re.compile(r"^m-layers-\[runs=(\d+),steps=(\d+)\]$")
_LAYER_OVERHEAD = re.compile(r"^m-layer-overhead-\[pairs=(\d+),cycles=(\d+),us=(\d+)\]$")
_LAYER = re.compile(r"^m-layer-\[(\d+),(-?\d+),([^,\]]+),(\d+),(\d+)\]$")
_LAYERS_TOTAL = re.compile(r"^m-layers-total-\[(\d+),(\d+)\]$")


@dataclass
class InferResult:
    runs: int
    warmup: int
    t0_us: int
    t1_us: int
    cycles: int | None               # total over the runs (m-infer-cycles), None if not given
    results: list[float]

    @property
    def us_per_inference(self) -> float:
        return (self.t1_us - self.t0_us) / max(self.runs, 1)

    @property
    def cycles_per_inference(self) -> float | None:
        return None if not self.cycles else self.cycles / max(self.runs, 1)


@dataclass
class DeviceInfo:
    name: str = ""
    model: str = ""
    extra: dict = field(default_factory=dict)   # info% extension: backend, timer, arena-bytes, ...


def list_ports() -> list:
    from serial.tools import list_ports as lp
    return list(lp.comports())


def describe_port(p) -> str:
    ids = f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None and p.pid is not None else "no USB id"
    return f"{p.device} ({ids}{', ' + p.description if p.description and p.description != 'n/a' else ''})"


def find_port(usb_ids, board_name: str = "the board") -> str:
    """The serial port of the first USB device whose VID:PID is in USB_IDS."""
    wanted = {s.upper() for s in usb_ids}
    ports = list_ports()
    for p in ports:
        if p.vid is not None and p.pid is not None and f"{p.vid:04X}:{p.pid:04X}" in wanted:
            return p.device
    seen = "; ".join(describe_port(p) for p in ports) or "no serial ports at all"
    raise LinkError(f"no serial port of {board_name} found (looked for USB ids "
                    f"{', '.join(sorted(wanted)) or 'none listed'}; seen: {seen})",
                    "connect the board with a data cable, or give the port with --port")


class DeviceLink:
    """An open serial link to a device running the tinyopt/MLPerf Tiny harness."""

    def __init__(self, port: str, baud: int = 115200, *, timeout: float = 5.0, dtr: int | None = None,
                 rts: int | None = None, open_retries: int = 3, on_line=None):
        self.port_name = port
        self.baud = baud
        self.timeout = timeout
        self.dtr, self.rts = dtr, rts
        self.open_retries = open_retries
        self.on_line = on_line           # callback(str) for every line received
        self.serial = None
        self._buf = b""
        self.log: list[str] = []         # non-protocol lines the device printed
        self.recent: list[str] = []      # last lines of any kind, for error messages

    # ---- opening and closing ----
    def open(self) -> "DeviceLink":
        import serial
        if not os.path.exists(self.port_name) and not self.port_name.startswith(("socket://", "rfc2217://", "COM")):
            raise LinkError(f"serial port {self.port_name} does not exist",
                            "check the port (tinyopt measure lists the ones it sees when --port is "
                            "left out); for qemu-m4 run `tinyopt flash PROJECT --keep-running` first")
        last = None
        for attempt in range(self.open_retries):
            ser = serial.Serial()
            ser.port, ser.baudrate, ser.timeout, ser.write_timeout = self.port_name, self.baud, 0.05, 5
            # DTR/RTS as the board wants them before the port opens (on ESP32 boards they
            # drive reset and boot mode).
            if self.dtr is not None:
                ser.dtr = bool(self.dtr)
            if self.rts is not None:
                ser.rts = bool(self.rts)
            try:
                ser.open()
                self.serial = ser
                return self
            except serial.SerialException as err:
                last = err
                if getattr(err, "errno", None) == errno.ENOENT:
                    break
                time.sleep(0.3 * (attempt + 1))
        raise LinkError(f"cannot open serial port {self.port_name}: {last}",
                        "is another program (a serial monitor) holding it? close it, or check permissions "
                        "(Linux: add yourself to the dialout group)")

    def close(self) -> None:
        if self.serial is not None:
            try:
                self.serial.close()
            except Exception:
                pass
            self.serial = None

    def __enter__(self):
        return self.open() if self.serial is None else self

    def __exit__(self, *exc):
        self.close()

    # ---- lines ----
    def _fail(self, cls, message: str, hint: str | None = None):
        raise cls(message, hint, self.recent[-10:])

    def _read_some(self) -> bytes:
        import serial
        try:
            waiting = self.serial.in_waiting
            return self.serial.read(max(1, min(waiting, 4096)))
        except (serial.SerialException, OSError) as err:
            self._fail(LinkLost, f"serial link to {self.port_name} lost ({err}); the device or "
                                  "emulator went away", "check the cable / power; for qemu-m4 see "
                                  "PROJECT/.tinyopt/qemu.log and flash again")

    def read_line(self, deadline: float, waiting_for: str) -> str:
        """The next non-empty line before DEADLINE (time.monotonic()), stripped."""
        while True:
            while b"\n" not in self._buf:
                if time.monotonic() > deadline:
                    partial = self._buf.decode(errors="replace").strip()
                    seen = (f"; last lines: {' | '.join(self.recent[-3:])}" if self.recent else
                            "; nothing received")
                    self._fail(LinkError, f"no answer from the device on {self.port_name} while waiting "
                                          f"for {waiting_for}{seen}"
                                          + (f"; unfinished line {partial[:60]!r}" if partial else ""),
                               "is the firmware running and the baud rate right? reset the board "
                               "or flash it again")
                self._buf += self._read_some()
            raw, self._buf = self._buf.split(b"\n", 1)
            raw = raw.strip(b"\r\n\t ")
            if not raw:
                continue
            try:
                text = raw.decode("ascii")
            except UnicodeDecodeError:
                text = None
            if text is None or any(ord(c) < 32 or ord(c) > 126 for c in text):
                self.recent.append(raw.decode(errors="replace"))
                self._fail(LinkError, f"garbled data on {self.port_name} while waiting for {waiting_for}: "
                                      f"{raw[:40]!r}", "check the baud rate (the board file says "
                                      f"{self.baud}), the cable, and that nothing else writes to the port")
            self.recent = (self.recent + [text])[-50:]
            if self.on_line:
                self.on_line(text)
            return text

    def drain(self, quiet_s: float = 0.2, limit_s: float = 2.0) -> list[str]:
        """Read and drop what the device has already sent (boot messages), up to LIMIT_S."""
        end = time.monotonic() + limit_s
        lines, last = [], time.monotonic()
        while time.monotonic() < end and time.monotonic() - last < quiet_s:
            data = self._read_some()
            if data:
                last = time.monotonic()
                self._buf += data
        while b"\n" in self._buf:
            raw, self._buf = self._buf.split(b"\n", 1)
            if raw.strip():
                lines.append(raw.decode(errors="replace").strip())
        return lines

    # ---- commands ----
    def command(self, cmd: str, timeout: float | None = None, allow_error: bool = False) -> list[str]:
        """Send CMD% and return the protocol lines before m-ready."""
        try:
            self.serial.write((cmd + "%").encode("ascii"))
            self.serial.flush()
        except Exception as err:
            self._fail(LinkError, f"cannot write to {self.port_name}: {err}",
                       "the device or emulator went away; flash it again")
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        lines: list[str] = []
        noise = 0
        while True:
            text = self.read_line(deadline, f"the answer to {cmd!r}")
            if text == READY:
                break
            if text == BOOT or text.startswith("m-golden-"):
                self._fail(DeviceReset, f"the device reset while running {cmd!r} (its boot banner "
                                        "appeared again)", "a crash or a watchdog reset: check power "
                                        "and stack/arena sizes; on ESP32 check the task watchdog")
            if not text.startswith("m-"):
                self.log.append(text)
                noise += 1
                if noise > MAX_LOG_LINES:
                    self._fail(LinkError, f"the device printed {noise} lines that are not MLPerf Tiny "
                                          f"protocol lines in answer to {cmd!r}",
                               "is this tinyopt firmware at the right baud rate?")
                continue
            lines.append(text)
        errors = [ln for ln in lines if ln.startswith("m-error-")]
        if errors and not allow_error:
            self._fail(LinkError, f"the device answered {cmd!r} with {errors[0]}",
                       "regenerate and flash the project; see `tinyopt_project.json` for what it expects")
        return lines

    def handshake(self, retries: int = 3) -> DeviceInfo:
        """name% (retried: a board may still be booting, and an ESP32's boot ROM talks at
        another baud rate), then profile% and the info% extension."""
        last = None
        for _ in range(retries):
            try:
                name_lines = self.command("name", timeout=self.timeout)
                break
            except LinkLost:
                raise
            except LinkError as err:   # silence, boot noise, or its banner came back
                last = err
            self.drain()
        else:
            raise last
        info = DeviceInfo()
        for ln in name_lines:
            if ln.startswith("m-name-dut-["):
                info.name = ln[len("m-name-dut-["):-1]
        for ln in self.command("profile"):
            if ln.startswith("m-model-["):
                info.model = ln[len("m-model-["):-1]
        for ln in self.command("info", allow_error=True):
            m = re.match(r"^m-info-([a-z0-9-]+)-\[(.*)\]$", ln)
            if m:
                key, value = m.group(1), m.group(2)
                info.extra[key] = int(value) if value.isdigit() else value
        return info

    def load_input(self, data: bytes, timeout: float | None = None) -> None:
        """db load N% then db HEX% chunks until m-load-done."""
        lines = self.command(f"db load {len(data)}", timeout)
        if f"m-[Expecting {len(data)} bytes]" not in lines:
            self._fail(LinkError, f"the device did not accept {len(data)} input bytes: {lines}",
                       "the project's input size differs from the model's? regenerate the project")
        done = len(data) == 0
        for i in range(0, len(data), CHUNK_BYTES):
            lines = self.command("db " + data[i:i + CHUNK_BYTES].hex(), timeout)
            done = "m-load-done" in lines
        if not done:
            self._fail(LinkError, "the device did not confirm the input load (no m-load-done)",
                       "flash the project again")

    def infer(self, runs: int, warmup: int, timeout: float) -> InferResult:
        lines = self.command(f"infer {runs} {warmup}", timeout)
        laps = [int(ln[len("m-lap-us-"):]) for ln in lines if ln.startswith("m-lap-us-")]
        if len(laps) != 2 or "m-infer-done" not in lines:
            self._fail(LinkError, f"unexpected answer to infer: {lines[:6]}",
                       "is this tinyopt/MLPerf Tiny firmware?")
        cycles = None
        for ln in lines:
            if ln.startswith("m-infer-cycles-"):
                cycles = int(ln[len("m-infer-cycles-"):])
        results = []
        for ln in lines:
            m = _FLOATS.match(ln)
            if m:
                results = _parse_list(m.group(1), float)
        return InferResult(runs, warmup, laps[0], laps[1], cycles, results)

    def layers(self, runs: int, timeout: float) -> LayerTiming:
        """`layers N%` (tinyopt extension): per-step totals over RUNS profiled inferences."""
        lines = self.command(f"layers {runs}", timeout)
        hint = "regenerate and flash the project with this tinyopt version (it has the layers% command)"
        head = next((m for m in map(_LAYERS_HEAD.match, lines) if m), None)
        over = next((m for m in map(_LAYER_OVERHEAD.match, lines) if m), None)
        total = next((m for m in map(_LAYERS_TOTAL.match, lines) if m), None)
        rows = [m for m in map(_LAYER.match, lines) if m]
        bad = [ln for ln in lines if ln.startswith("m-layer") and not (
            _LAYERS_HEAD.match(ln) or _LAYER_OVERHEAD.match(ln) or _LAYER.match(ln) or _LAYERS_TOTAL.match(ln))]
        if bad:
            self._fail(LinkError, f"garbled layer profile line from the device: {bad[0][:80]!r}", hint)
        if head is None or over is None or total is None:
            missing = [n for n, m in (("m-layers", head), ("m-layer-overhead", over),
                                      ("m-layers-total", total)) if m is None]
            self._fail(LinkError, f"incomplete layer profile from the device (no {', '.join(missing)} line)", hint)
        if int(head.group(1)) != runs:
            self._fail(LinkError, f"the device profiled {head.group(1)} runs, {runs} were asked", hint)
        steps = [(int(m.group(1)), int(m.group(2)), m.group(3), int(m.group(4)), int(m.group(5))) for m in rows]
        if [s[0] for s in steps] != list(range(int(head.group(2)))):
            self._fail(LinkError, f"incomplete layer profile: {len(steps)} of {head.group(2)} steps, "
                                  f"or out of order", hint)
        return LayerTiming(runs, steps, int(over.group(1)), int(over.group(2)), int(over.group(3)),
                           int(total.group(1)), int(total.group(2)))

    def results(self, timeout: float | None = None) -> tuple[list[float], list[int] | None]:
        floats, ints = [], None
        for ln in self.command("results", timeout):
            m = _INTS.match(ln)
            if m:
                ints = _parse_list(m.group(1), int)
                continue
            m = _FLOATS.match(ln)
            if m:
                floats = _parse_list(m.group(1), float)
        return floats, ints


def _parse_list(text: str, kind) -> list:
    try:
        return [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise LinkError(f"garbled result list from the device: {text[:60]!r}",
                        "check the baud rate and the cable") from None
