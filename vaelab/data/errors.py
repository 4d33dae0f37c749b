"""The one exception for data problems, so callers can catch them all and show the message."""


class DataError(ValueError):
    """A dataset file that is missing, unreadable, malformed, or not the expected content.

    The message says which file, what is wrong with it, and what to do.
    """
