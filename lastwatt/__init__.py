"""LastWatt: community-staked routing of a solar container's business energy."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lastwatt")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+source"
