"""The one rich console for human output. It writes to stderr, so that stdout belongs to
--json; the lowest module of the package, usable by stages and commands alike."""
from rich.console import Console

console = Console(stderr=True, highlight=False)
