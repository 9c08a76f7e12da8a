"""Config loading: precedence, overrides, and one-line errors for bad values."""

import pytest

from cl_nlp.config import flatten, load_config, parse_override
from cl_nlp.errors import UserError


def test_defaults_and_flag_precedence(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("seed: 3\ntrain:\n  epochs: 5\nstrategy: naive\nstream:\n  name: clinc-cil\n  n_tasks: 2\n")
    cfg = load_config(path, ["train.epochs=2", "stream.n_tasks=3"], seed=7)
    assert cfg.seed == 7 and cfg.train.epochs == 2
    assert cfg.stream.name == "clinc-cil" and cfg.stream.options == {"n_tasks": 3}
    assert cfg.train.lr == pytest.approx(1e-4)


def test_override_values_are_yaml_scalars():
    assert load_config(None, ["train.lr=3e-5"]).train.lr == 3e-5  # YAML 1.1 reads "3e-5" as a string
    assert parse_override("model.name_or_path=null") == (["model", "name_or_path"], None)
    assert parse_override("tracking.enabled=false") == (["tracking", "enabled"], False)


def test_ints_widen_to_floats_and_to_dict_round_trips():
    cfg = load_config(None, ["train.lr=1"])
    assert isinstance(cfg.train.lr, float)
    flat = flatten(cfg.to_dict())
    assert flat["train.lr"] == 1.0 and flat["strategy.name"] == "naive"


@pytest.mark.parametrize("override, message", [
    ("train.lr=-1", "lr must be > 0"),
    ("train.epochs=0", "epochs must be >= 1"),
    ("train.epochs=two", "train.epochs: expected int"),
    ("train.learning_rate=1", "unknown option 'learning_rate'"),
    ("trian.epochs=1", "unknown config section 'trian'"),
    ("noequals", "expected key=value"),
])
def test_bad_values_name_the_key(override, message):
    with pytest.raises(UserError, match=message):
        load_config(None, [override])


def test_keyword_options_are_named_as_users_write_them():
    # `lambda` is stored in the field `lambda_`; a strategy without it must still say `lambda`.
    from cl_nlp.strategies import strategy_options

    with pytest.raises(UserError, match=r"strategy \(replay\): unknown option 'lambda'; valid options are: "):
        strategy_options("replay", {"lambda": 1})
    assert strategy_options("ewc", {"lambda": 5}).lambda_ == 5.0


def test_bad_yaml_file_reports_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochs: [1\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(path)
    with pytest.raises(UserError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
