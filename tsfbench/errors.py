"""The one exception for bad user input, in a leaf module every layer can import without torch."""


class ConfigError(ValueError):
    """Bad user input: the message names the parameter and the accepted values.

    The CLI prints it on one line and exits 2; a suite's loader raises it before anything runs.
    """
