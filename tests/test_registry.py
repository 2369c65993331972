"The model registry on the real PostgreSQL, and the `tradekit models` commands as a user runs them."

import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from test_cli import run_cli

from tradekit.data import synthetic_bars
from tradekit.features.sets import CORE_FEATURES
from tradekit.registry import (
    InvalidTransition,
    ModelRecord,
    PromotionRule,
    Stage,
    UnknownModel,
    apply_promotion_rule,
    fingerprint,
    history,
    list_models,
    load_production,
    promote,
    register,
    rollback,
)

pytestmark = [
    pytest.mark.filterwarnings("ignore:GitWildMatchPattern:DeprecationWarning"),  # bentoml's pathspec use
    pytest.mark.usefixtures("bento_home"),  # a BentoML store in a temp dir
]
FOLDS = "purged-kfold(n_splits=5, embargo=10)"


class Prior:
    "Predicts the training class frequencies for every row."

    def fit(self, X: pd.DataFrame, y: pd.Series, sample_weight: pd.Series | None = None) -> "Prior":
        self.classes_, counts = np.unique(y, return_counts=True)
        self.p = counts / counts.sum()
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return np.tile(self.p, (len(X), 1))

    def save(self, path: Path) -> None:
        np.save(Path(path) / "p.npy", np.vstack([self.classes_, self.p]))

    @classmethod
    def load(cls, path: Path) -> "Prior":
        m = cls()
        m.classes_, m.p = np.load(Path(path) / "p.npy")
        return m


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


def _register(engine: Engine, name: str, loss: float, ones: int = 6, folds: str = FOLDS) -> ModelRecord:
    model = Prior().fit(pd.DataFrame({"f": range(8)}), pd.Series([1] * ones + [0] * (8 - ones)))
    metrics, params = {"oos_log_loss": loss}, {"folds": folds, "kind": "prior"}
    fp = fingerprint(synthetic_bars(300, seed=ones))
    return register(engine, name, model, CORE_FEATURES, metrics, params, fp, who="ci", tags={"run": "pytest"})


def test_register_promote_rollback(engine: Engine, name: str) -> None:
    r1, r2 = _register(engine, name, 0.66, ones=6), _register(engine, name, 0.64, ones=5)
    assert (r1.version, r2.version, r2.stage) == (1, 2, Stage.candidate)
    promote(engine, name, 1, Stage.production, "ana", "first")
    promote(engine, name, 2, Stage.production, "ana", "lower loss")
    model, fs, record = load_production(engine, name)
    assert (record.version, fs.key, model.predict_proba([[0]]).tolist()) == (
        2,
        CORE_FEATURES.key,
        [[3 / 8, 5 / 8]],
    )
    assert rollback(engine, name, "bob", "live hit rate fell").version == 1
    assert [r.stage for r in list_models(engine, name)] == [Stage.production, Stage.archived]
    moves = [(t.version, t.from_stage, t.to_stage, t.who) for t in history(engine, name)]
    assert moves[2:] == [
        (1, Stage.candidate, Stage.production, "ana"),
        (1, Stage.production, Stage.archived, "ana"),
        (2, Stage.candidate, Stage.production, "ana"),
        (2, Stage.production, Stage.archived, "bob"),
        (1, Stage.archived, Stage.production, "bob"),
    ]
    assert all(t.at.tzinfo is not None for t in history(engine, name))


def test_errors_name_the_problem(engine: Engine, name: str) -> None:
    with pytest.raises(UnknownModel, match=f"no model named '{name}'"):
        history(engine, name)
    _register(engine, name, 0.6)
    with pytest.raises(UnknownModel, match=r"has no version 3 \(versions: 1\)"):
        promote(engine, name, 3, Stage.production, "ana", "x")
    with pytest.raises(InvalidTransition, match="has no production version to roll back"):
        rollback(engine, name, "ana", "x")
    promote(engine, name, 1, Stage.production, "ana", "x")
    with pytest.raises(InvalidTransition, match="is production: it can go to archived, not staging"):
        promote(engine, name, 1, Stage.staging, "ana", "x")


def test_promotion_rule(engine: Engine, name: str) -> None:
    rule = PromotionRule(metric="oos_log_loss", direction="lower", min_margin=0.01)
    _register(engine, name, 0.66)
    assert apply_promotion_rule(engine, name, 1, rule, "ci").promoted  # no production yet
    (
        _register(engine, name, 0.655),
        _register(engine, name, 0.5, folds="kfold(3)"),
        _register(engine, name, 0.6),
    )
    decisions = [apply_promotion_rule(engine, name, v, rule, "ci") for v in (2, 3, 4)]
    assert [d.promoted for d in decisions] == [False, False, True]
    assert (
        "does not beat by more than 0.01" in decisions[0].reason
        and "not the same folds" in decisions[1].reason
    )
    assert load_production(engine, name)[2].version == 4
    refusals = [t for t in history(engine, name) if t.from_stage == t.to_stage]
    assert [(t.version, t.why.split(":")[0]) for t in refusals] == [(2, "rule refused"), (3, "rule refused")]


def test_database_allows_one_production_version(engine: Engine, name: str) -> None:
    _register(engine, name, 0.6), _register(engine, name, 0.6)
    promote(engine, name, 1, Stage.production, "ana", "x")
    with pytest.raises(IntegrityError), Session(engine) as session:
        session.get(ModelRecord, (name, 2)).stage = Stage.production
        session.commit()


# The commands, as subprocesses on the [test] profile.


def _models(*args: str, tmp_path: Path, **env: str):
    return run_cli("models", *args, tmp_path=tmp_path, TRADEKIT_PROFILE="test", **env)


def test_cli_promote_rollback_list_history(engine: Engine, name: str, tmp_path: Path) -> None:
    _register(engine, name, 0.66), _register(engine, name, 0.64)
    for args in (
        ("promote", name, "1", "--why", "first"),
        ("promote", name, "2", "--why", "better", "--who", "ana"),
    ):
        r = _models(*args, tmp_path=tmp_path)
        assert r.returncode == 0 and f"{name} v{args[2]} -> production" in r.stdout, r.stderr
    r = _models("rollback", name, "--why", "live loss", tmp_path=tmp_path, USER="bob")
    assert r.returncode == 0 and f"{name} v1 -> production (rolled back)" in r.stdout, r.stderr
    r = _models("list", "--name", name, tmp_path=tmp_path)
    assert r.returncode == 0 and "archived" in r.stdout and "oos_log_loss=0.64" in r.stdout, r.stderr
    r = _models("history", name, tmp_path=tmp_path)
    assert r.returncode == 0 and "rollback: live loss" in r.stdout and "bob" in r.stdout, r.stderr
    assert [t.who for t in history(engine, name)][-2:] == ["bob", "bob"]


@pytest.mark.parametrize(
    "args", [("history", "nope"), ("promote", "nope", "1", "--why", "x"), ("rollback", "nope", "--why", "x")]
)
def test_cli_unknown_model_is_one_line_exit_1(args: tuple[str, ...], tmp_path: Path) -> None:
    r = _models(*args, tmp_path=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["error: no model named 'nope' in the registry"]


def test_cli_bad_setting_or_usage_exit_2(tmp_path: Path) -> None:
    r = _models("list", tmp_path=tmp_path, TRADEKIT_DATABASE_URL="postgres//missing-colon")
    assert r.returncode == 2 and "TRADEKIT_DATABASE_URL" in r.stderr and "Traceback" not in r.stderr
    assert _models("promote", "m", "1", tmp_path=tmp_path).returncode == 2  # --why is required
    assert _models("promote", "m", "one", "--why", "x", tmp_path=tmp_path).returncode == 2


def test_cli_promote_by_rule(engine: Engine, name: str, tmp_path: Path) -> None:
    for loss in (0.66, 0.64, 0.65):
        _register(engine, name, loss)
    rule = ("--why", "rule", "--metric", "oos_log_loss", "--direction", "lower", "--margin", "0.005")
    r = _models("promote", name, "1", *rule, tmp_path=tmp_path)
    assert r.returncode == 0 and f"{name} v1: promoted" in r.stdout, r.stdout + r.stderr
    r = _models("promote", name, "2", *rule, tmp_path=tmp_path)
    assert r.returncode == 0 and f"{name} v2: promoted" in r.stdout, r.stdout + r.stderr
    r = _models("promote", name, "3", *rule, tmp_path=tmp_path)
    assert r.returncode == 1 and f"{name} v3: refused" in r.stdout, r.stdout + r.stderr
    assert "rule refused" in history(engine, name)[-1].why
