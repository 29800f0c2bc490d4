"""tsfbench: the cost and accuracy of video transformers (TimeSformer) and 3D CNN baselines."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tsfbench")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
