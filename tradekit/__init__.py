"""A Jupyter-centric research-to-production framework for AI trading

Modules:

- `tradekit.backtest`: Signals to a vectorbt portfolio with costs, sizing and stops, filled at the next bar's open; metrics beside buy-and-hold, parameter sweeps, and a walk-forward backtest that trains only on the past.
- `tradekit.cli`: The `tradekit` command: `tradekit <noun> <verb>`, rich output, one readable line per expected error.
- `tradekit.config`: One validated `Settings` object: runtime profiles from `settings.ini`, overridden by `TRADEKIT_*` variables.
- `tradekit.data`: Bars and ticks in one schema: the bundled S&P 500 sample, seeded synthetic generators, and CSV/Parquet loaders that report and repair bad rows.
- `tradekit.demo`: What `tradekit demo` runs: the main pipeline end to end on whatever services `Settings` configure.
- `tradekit.errors`: The exceptions every tradekit entry point raises, and the exit codes the CLI maps them to.
- `tradekit.events`: Versioned event schemas on Kafka topics, a consumer runner that applies each event effectively once, a dead-letter topic for what cannot be read, replay from a time, and a file publisher.
- `tradekit.execution.book`: The tables the execution service keeps (orders as a state machine, fills, positions, last trades, an append-only audit trail, kill switches), average-cost positions from fills, and what reads them back.
- `tradekit.execution.broker`: Where orders go: the `Broker` protocol, a deterministic `PaperBroker` that fills against the tick stream, and a wrapper that retries a broker that is down or slow, then rejects with the reason.
- `tradekit.execution.risk`: Pre-trade checks: a decision or order and the state it meets in, a verdict out. No I/O, no clock.
- `tradekit.execution.service`: Decisions in, orders out: risk checks, the broker, the order lifecycle, fills, positions and P&L, and an audit trail, all written in the transaction that marks each event as processed.
- `tradekit.features.batch`: Vectorised indicators over whole series: TA-Lib's definitions and warm-up, in one numba pass each.
- `tradekit.features.sets`: A named, versioned, serialisable list of features: one definition gives the training matrix (batch) and the live feature vector (streaming), with the same numbers.
- `tradekit.features.streaming`: One class per indicator, updated one bar at a time in O(1), equal to TA-Lib and to `features.batch` at every bar.
- `tradekit.jobs`: Job notebooks run with papermill into dated reports (notebook and HTML), each run recorded in the database, one run per job at a time, on a cron schedule.
- `tradekit.labels`: Forward-looking targets: fixed-horizon returns and directions, triple-barrier outcomes and the weights of overlapping labels. The only module allowed to read the future.
- `tradekit.models.base`: What every tradekit model is: `fit(X, y)`, `predict_proba(X)`, `save(dir)`, `load(dir)`; and one way to save and load any of them by name.
- `tradekit.models.boosting`: XGBoost and LightGBM behind the `Model` interface, with a single-row path fast enough to score every tick.
- `tradekit.models.ensemble`: Average several models with weights fitted on validation predictions, and make the probabilities honest.
- `tradekit.models.lstm`: A recurrent `Model`: an LSTM reads the last `seq_len` feature vectors of each row and predicts its class.
- `tradekit.models.training`: One spec, one call: features, labels, purged cross-validation of each member, ensemble weights and calibration chosen on out-of-fold predictions, and the final model fitted on all rows.
- `tradekit.models.validation`: Time-series cross-validation without leakage: walk-forward and purged K-fold splits, a proof that they are purged, per-fold scores against naive baselines, and flags for results too good to be honest.
- `tradekit.monitoring`: The Prometheus metrics every long-running tradekit service exports, under one set of names.
- `tradekit.patterns`: Candlestick and chart patterns as signed signals, batch and streaming, and the statistics that say whether they mean anything.
- `tradekit.registry`: Trained models in the BentoML store, their versions and stages in the database, and an append-only log of every stage change: who, when, why.
- `tradekit.services`: Handles to the database, the cache and the Kafka broker, opened from `Settings`; the embedded Tansu broker.
- `tradekit.store`: Bars kept per symbol, with upsert by timestamp: Parquet files when embedded, a `bars` table in PostgreSQL (or SQLite) in production, behind one interface.
- `tradekit.strategy`: Trading rules: parameters in a frozen pydantic model, the rule written once over numpy arrays, so the backtest passes every row and serving passes one."""

__version__ = "0.0.1"
