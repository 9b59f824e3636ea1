"""The one exception type that reaches the user.

Anything the user can fix (a bad path, an option out of range, a corrupt file) is raised as a
HotStartError with a message that names the problem and what to do. The CLI prints that message
on one line and exits with status 2; every other exception is a bug and keeps its traceback.
"""


class HotStartError(Exception):
    """A problem with the user's input, explained in one line."""
