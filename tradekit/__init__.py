"""A Jupyter-centric research-to-production framework for AI trading

Modules:

- `tradekit.data`: Bars and ticks in one schema: the bundled S&P 500 sample, seeded synthetic generators, and CSV/Parquet loaders that report and repair bad rows."""

__version__ = "0.0.1"
