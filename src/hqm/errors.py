"""The one exception type the command line turns into a one-line message."""


class HqmError(Exception):
    """A user-facing error: bad input, missing file, failed download, bad config.

    The message must be a single line that names the file and the entry at fault.
    """
