"""The errors users see, one family: each carries a message and a hint on how to fix it, and
the CLI prints it as one line and exits non-zero. Anything else that escapes a command is an
internal error (a bug), reported as such. Code branches on these types, never on message text."""


class TinyoptError(Exception):
    """A problem the user can act on. The CLI prints it as one line and exits non-zero."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = f"error: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return " ".join(text.split())


class Interrupted(TinyoptError):
    """The user stopped a long job (Ctrl-C) that can be continued; the hint says how."""

    exit_code = 130


class NotBuildableHere(TinyoptError):
    """The project is fine, but this machine cannot build it (a real board's PlatformIO
    platform or toolchain is not installed and the registry cannot be reached)."""


class DamagedModel(TinyoptError):
    """A .tflite whose flatbuffer does not hold together (truncated, corrupted)."""


class NativeLoadError(DamagedModel):
    """The TFLM runtime crashed or hung on a model whose tables read as valid: damaged in a way they
    do not show, or an operator form the tflite-micro build aborts on."""


class LinkError(TinyoptError):
    """A serial exchange that failed; .lines holds the last lines seen (for reports)."""

    def __init__(self, message: str, hint: str | None = None, lines: list[str] | None = None):
        super().__init__(message, hint)
        self.lines = list(lines or [])


class LinkLost(LinkError):
    """The port went away under the client (cable, power, emulator ended)."""


class DeviceReset(LinkError):
    """The device printed its boot banner again in the middle of an exchange."""
