"""The one exception type for mistakes a user can fix.

Every :class:`UserError` message is a single line that names the file, key or value at fault
and says how to fix it. The CLI prints it as ``error: <message>`` and exits with code 2,
before any long work starts and without writing anything.
"""


class UserError(Exception):
    """A problem with the user's input (file, key, value, shape, dtype), with the fix in one line."""

    def __init__(self, message: str):
        if "\n" in message:
            message = " ".join(part.strip() for part in message.splitlines())
        super().__init__(message)
