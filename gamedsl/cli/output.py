"""Where output goes: results to stdout, diagnostics (errors, warnings, progress) to stderr."""

from rich.console import Console

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
