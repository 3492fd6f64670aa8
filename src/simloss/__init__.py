"""simloss: similarity-aware classification losses (Kobs et al., ISMIS 2020)."""

__version__ = "0.1.0"

__all__ = ["__version__"]
