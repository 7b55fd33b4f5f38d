"""The one exception type users see: a message plus a hint on how to fix it."""


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
