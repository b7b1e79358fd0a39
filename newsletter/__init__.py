"""newsletter: gather cluster news, render localized digests, deliver them to segmented lists."""

__version__ = "0.1.0"
