"""mash: turn a field's blogs into a monthly curated newsletter (the Monthly Mash)."""

__version__ = "0.1.0"
