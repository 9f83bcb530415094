class TitoError(Exception):
    """A user-facing failure: `tito` prints the message as one line and exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
