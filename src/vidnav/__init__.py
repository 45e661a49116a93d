"""vidnav: video-based vision-and-language navigation agents on an embedded VLN-CE benchmark."""

__version__ = "0.1.0"

from vidnav.errors import VidNavError

__all__ = ["VidNavError", "__version__"]
