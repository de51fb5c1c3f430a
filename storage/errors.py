"""The one exception type that means "the user gave us something wrong".

The CLI turns it into a one-line message on stderr and exit code 2, with no traceback.
Every package may raise it, so it lives on the bottom floor.
"""


class UserError(Exception):
    """Bad input: a spec, a file, a name. The message names what is wrong and where."""
