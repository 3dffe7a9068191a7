"""edgeforge-ext: the Palette Edge EdgeForge (CanvOS) build as one reliable command."""

__version__ = "0.1.0"
