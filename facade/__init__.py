"""strangler: take a Django monolith apart route by route.

The package is the toolkit: the CLI (``facade.cli``), the local stack runner
(``facade.stack``) and, as the toolkit grows, the routing model, the proxy and the
AWS generators. It never imports the sample monolith; it runs it as a process.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("strangler")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
