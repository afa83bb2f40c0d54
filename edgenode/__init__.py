"""edgenode: an offline-capable fallback node for a Japanese town hall's resident registry."""

__version__ = "0.1.0"
