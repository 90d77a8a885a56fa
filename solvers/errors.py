"""The one error type of the solvers package: a bad name or parameter, with the choices."""


class SolverError(ValueError):
    """Unknown solver or optimizer, or a parameter it does not take or cannot accept."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message if hint is None else f"{message} ({hint})")
        self.message = message
        self.hint = hint
