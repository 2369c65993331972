"""A Jupyter-centric research-to-production framework for AI trading

Modules:

- `tradekit.audit`: Prove a feature, a strategy or any function of bars never reads the future, and that a splitter never trains on a test window.
- `tradekit.auth`: API keys for the HTTP services: stored hashed, with scopes (read < trade < admin) and a per-key rate limit.
- `tradekit.backtest`: Signals to a vectorbt portfolio with costs, sizing and stops, filled at the next bar's open; metrics beside buy-and-hold, parameter sweeps, and a walk-forward backtest that trains only on the past.
- `tradekit.cli`: The `tradekit` command: `tradekit <noun> <verb>`, rich output, one readable line per expected error.
- `tradekit.config`: One validated `Settings` object: runtime profiles from `settings.ini`, overridden by `TRADEKIT_*` variables.
- `tradekit.dashboards.data`: What the Voila dashboards show, read from the database the services write: orders, fills, positions, alerts and decisions of an account, the production model's drift and live hit rate, a model's validation, importances and backtest; and the Voila server that serves `nbs/dashboards/`.
- `tradekit.dashboards.widgets`: The live trading and research dashboards as ipywidgets with plotly `FigureWidget`s: what the notebooks in `nbs/dashboards/` display under Voila.
- `tradekit.data`: Bars and ticks in one schema: the bundled S&P 500 sample, seeded synthetic generators, and CSV/Parquet loaders that report and repair bad rows.
- `tradekit.demo`: What `tradekit demo` runs: the main pipeline end to end on whatever services `Settings` configure.
- `tradekit.distributed`: Walk-forward folds, per-symbol models and backtests, and parameter sweeps as Dask tasks; one large training set with xgboost.dask or LightGBM's Dask estimator. A LocalCluster here, a real cluster with no code change.
- `tradekit.drift`: Is the production model still looking at the data it was trained on, and is it still right? Feature drift (PSI and KS per feature) against the training rows, and the hit rate of live decisions once their horizon has passed.
- `tradekit.errors`: The exceptions every tradekit entry point raises, and the exit codes the CLI maps them to.
- `tradekit.events`: Versioned event schemas on Kafka topics, a consumer runner that applies each event effectively once, a dead-letter topic for what cannot be read, replay from a time, and a file publisher.
- `tradekit.execution.book`: The tables the execution service keeps (orders as a state machine, fills, positions, last trades, an append-only audit trail, kill switches), average-cost positions from fills, and what reads them back.
- `tradekit.execution.broker`: Where orders go: the `Broker` protocol, a deterministic `PaperBroker` that fills against the tick stream, and a wrapper that retries a broker that is down or slow, then rejects with the reason.
- `tradekit.execution.reconcile`: Replay a recorded paper session's decisions through a backtest over the same ticks with the same fill model, and list trade by trade where the two disagree and why.
- `tradekit.execution.risk`: Pre-trade checks: a decision or order and the state it meets in, a verdict out. No I/O, no clock.
- `tradekit.execution.service`: Decisions in, orders out: risk checks, the broker, the order lifecycle, fills, positions and P&L, and an audit trail, all written in the transaction that marks each event as processed.
- `tradekit.features.batch`: Vectorised indicators over whole series: TA-Lib's definitions and warm-up, in one numba pass each.
- `tradekit.features.sets`: A named, versioned, serialisable list of features: one definition gives the training matrix (batch) and the live feature vector (streaming), with the same numbers.
- `tradekit.features.streaming`: One class per indicator, updated one bar at a time in O(1), equal to TA-Lib and to `features.batch` at every bar.
- `tradekit.fills`: One fill model for the backtest and the paper broker: when an order may fill, at what price (market, limit, stop; slippage) and for what fee.
- `tradekit.jobs`: Job notebooks run with papermill into dated reports (notebook and HTML), each run recorded in the database, one run per job at a time, on a cron schedule.
- `tradekit.kafka_client`: Two client libraries behind one small interface: kafka-python (pure Python, the default) and confluent-kafka (librdkafka, the `fast-kafka` extra), chosen by the `kafka_backend` setting.
- `tradekit.labels`: Forward-looking targets: fixed-horizon returns and directions, triple-barrier outcomes and the weights of overlapping labels. The only module allowed to read the future.
- `tradekit.models.base`: What every tradekit model is: `fit(X, y)`, `predict_proba(X)`, `save(dir)`, `load(dir)`; and one way to save and load any of them by name.
- `tradekit.models.boosting`: XGBoost and LightGBM behind the `Model` interface, with a single-row path fast enough to score every tick.
- `tradekit.models.ensemble`: Average several models with weights fitted on validation predictions, and make the probabilities honest.
- `tradekit.models.lstm`: A recurrent `Model`: an LSTM reads the last `seq_len` feature vectors of each row and predicts its class.
- `tradekit.models.report`: Every score next to the naive baselines on the same rows, with a block-bootstrap confidence interval and p-value, and a flag when an edge is too good to be believed.
- `tradekit.models.training`: One spec, one call: features, labels, purged cross-validation of each member, ensemble weights and calibration chosen on out-of-fold predictions, and the final model fitted on all rows.
- `tradekit.models.validation`: Time-series cross-validation without leakage: walk-forward and purged K-fold splits, a proof that they are purged, per-fold scores against naive baselines, and flags for results too good to be honest.
- `tradekit.monitoring`: The Prometheus metrics every long-running tradekit service exports, under one set of names.
- `tradekit.patterns`: Candlestick and chart patterns as signed signals, batch and streaming, and the statistics that say whether they mean anything.
- `tradekit.quality`: The validator that cleans tick files guards the live stream before features: bad ticks are quarantined with their reason, counted, and raise an alert; only clean ticks go on.
- `tradekit.registry`: Trained models in the BentoML store, their versions and stages in the database, and an append-only log of every stage change: who, when, why.
- `tradekit.runs`: A manifest for every training, backtest, sweep and job run: the exact rows, the code, the packages, the seeds, the parameters and the settings behind its metrics, so it can be shown, compared and run again.
- `tradekit.secrets`: Credentials (exchange keys, bot tokens) encrypted at rest with Fernet, a key from the environment or a key file, rotation that re-encrypts everything, and values that never print in full.
- `tradekit.services`: Handles to the database, the cache and the Kafka broker, opened from `Settings`; the embedded Tansu broker.
- `tradekit.serving.bento`: Build the decision service into the BentoML store and a `.bento` file, start it locally, and how to turn it into a container image.
- `tradekit.serving.engine`: The production model and its feature set, per-symbol streaming state in a two-level cache, validated bars in, calibrated decisions out, and a hot reload when the registry's production version changes.
- `tradekit.serving.http`: The ASGI app the decision bento mounts: `/decide`, `/features`, a server-sent-event stream of decisions, admin endpoints (reload, kill switch), API keys on all of them, and the OpenAPI document.
- `tradekit.serving.stream`: Bars or ticks from Kafka in, decisions to the topic the execution service reads out: the decision engine scoring in process, with per-symbol state that a restarted worker resumes from the cache.
- `tradekit.settings_store`: Runtime configuration in the database: versioned, audited values per environment and flow, a flow registry and feature flags, read through an in-process cache that Redis pub/sub invalidates.
- `tradekit.store`: Bars kept per symbol, with upsert by timestamp: Parquet files when embedded, a `bars` table in PostgreSQL (or SQLite) in production, behind one interface.
- `tradekit.strategy`: Trading rules: parameters in a frozen pydantic model, the rule written once over numpy arrays, so the backtest passes every row and serving passes one.
- `tradekit.sweeps`: Parameter sweeps that neither overfit nor run out of memory: walk-forward selection, the deflated Sharpe ratio, the probability of backtest overfitting, the winner's neighbours, and chunked, resumable runs.
- `tradekit.telegram`: A Telegram bot for the desk: `/status`, `/positions`, `/pnl`, `/orders`, `/model`, `/kill` with confirmation, and rate-limited push notifications for fills, risk alerts and failed jobs."""

__version__ = "0.0.1"
