"""gefu — low-light vision: SCUF enhancement and the GEFU enhance-then-understand benchmark."""

from .enhancers import Enhancer, create_enhancer, list_enhancers

__version__ = "0.1.0"

__all__ = ["Enhancer", "create_enhancer", "list_enhancers", "__version__"]
