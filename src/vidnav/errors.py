"""The one error type users can cause and read.

Anything a user can get wrong (a bad file, an unknown preset, a malformed frame) raises
:class:`VidNavError` with a message that names the thing and says how to fix it. The CLI prints
the message without a traceback and exits non-zero.
"""


class VidNavError(ValueError):
    """A user-facing error: the message names the file/field/value and the fix."""
