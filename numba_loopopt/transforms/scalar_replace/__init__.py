"""The ``scalar-replace`` pass (see :mod:`.driver`)."""

from .driver import ScalarReplace

__all__ = ["ScalarReplace"]
