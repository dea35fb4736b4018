from pathlib import Path

import pytest

from audioforge.config import apply_override, flatten, load_config, to_dict
from audioforge.errors import ConfigError
from audioforge.paths import preset
from audioforge.unlearning.config import UnlearnConfig

REPO = Path(__file__).resolve().parents[1]


def test_paper_preset_holds_the_paper_protocol():
    cfg = load_config(UnlearnConfig, [preset("unlearn", "paper")])
    assert cfg.original.epochs == 100 and cfg.gold.epochs == 120 and cfg.original.batch_size == 16
    assert cfg.seeds == [0, 1, 2]
    assert [p.name for p in cfg.unlearning.phases] == ["reset", "perturb", "finetune"]
    assert cfg.unlearning.phases[1].rounds == 5 and cfg.unlearning.phases[1].ops[0].scale == 0.08
    assert set(cfg.unlearning.schemes) == {"base", "all_bn", "conv_bn"}
    assert (cfg.features.n_mfcc, cfg.features.frames) == (20, 20)


def test_quick_preset_inherits_and_replaces_lists():
    cfg = load_config(UnlearnConfig, [preset("unlearn", "quick")])
    assert cfg.original.epochs < 100 and cfg.original.batch_size == 16  # merged from paper.yaml
    assert cfg.unlearning.phases[1].rounds == 2
    assert set(cfg.unlearning.schemes) == {"base", "all_bn", "conv_bn"}


def test_overrides_reach_nested_keys_and_list_items():
    cfg = load_config(UnlearnConfig, [preset("unlearn", "paper")],
                      ["original.epochs=7", "unlearning.phases.1.ops.0.scale=0.2", "seeds=[4, 5]",
                       "trainer.devices=2", "data.forget_speakers=[theo]"])
    assert cfg.original.epochs == 7
    assert cfg.unlearning.phases[1].ops[0].scale == 0.2
    assert cfg.seeds == [4, 5] and cfg.trainer.devices == 2 and cfg.data.forget_speakers == ["theo"]


@pytest.mark.parametrize("override, message", [
    ("original.epochz=3", "unknown config key original.epochz"),
    ("nonsense=1", "unknown config key nonsense"),
    ("original.epochs=abc", "original.epochs must be an integer"),
    ("original.lr=fast", "original.lr must be a number"),
    ("membership_inference=3", "membership_inference must be true or false"),
    ("unlearning.phases.7.epochs=1", "index 7 is out of range"),
    ("unlearning.phases.0.ops.0.op=erase", "unlearning.phases.0.ops.0.op: unknown operation 'erase'"),
    ("original.epochs=0", "epochs and batch_size must be >= 1"),
    ("features.kind=wavelet", "unknown feature kind 'wavelet'"),
    ("features.n_mfcc=60", "n_mfcc (60) cannot exceed n_mels"),
    ("seeds=[]", "seeds must hold at least one seed"),
    ("noequals", "must look like key.path=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(UnlearnConfig, [preset("unlearn", "paper")], [override])


def test_missing_and_invalid_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(UnlearnConfig, [tmp_path / "nope.yaml"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("original: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(UnlearnConfig, [bad])


def test_round_trip_and_flatten():
    cfg = load_config(UnlearnConfig, [preset("unlearn", "paper")])
    again = load_config(UnlearnConfig, overrides=[], defaults=to_dict(cfg))
    assert to_dict(again) == to_dict(cfg)
    flat = flatten(to_dict(cfg))
    assert flat["unlearning.phases.1.ops.0.scale"] == 0.08 and flat["original.epochs"] == 100


def test_apply_override_creates_missing_mappings():
    data = {}
    apply_override(data, "a.b.c=1.5")
    assert data == {"a": {"b": {"c": 1.5}}}


@pytest.mark.parametrize("value", [1e-06, 9.9e-05, 1e20, 0.5, 3, True, None, "x y", [1e-7, "linear"], {"a": 2.5e-8}])
def test_an_override_written_from_a_value_reads_back_as_that_value(value):
    """JSON would write 1e-06, which YAML reads as a string: a sweep's small learning rates."""
    from audioforge.config import apply_override, override

    data = {"key": {"leaf": "old"}}
    apply_override(data, override("key.leaf", value))
    assert data["key"]["leaf"] == value and type(data["key"]["leaf"]) is type(value)


def test_every_preset_loads_and_a_section_may_start_from_a_preset():
    """Each preset under configs/ builds its command's config; the reference table's cells start
    from the reference distill preset (a nested ``base``), while an unlearning scheme named
    ``base`` (a list, not a file) is left alone."""
    from audioforge.distill.config import DistillConfig
    from audioforge.distill.tables import TableConfig
    from audioforge.unlearning.config import UnlearnConfig

    table = load_config(TableConfig, [REPO / "configs" / "distill-table" / "reference.yaml"], [])
    reference = load_config(DistillConfig, [REPO / "configs" / "distill" / "reference.yaml"], [])
    assert table.distill.mtt == reference.mtt and table.distill.eval == reference.eval
    assert table.distill.mtt.gradient == "constant_memory" and table.distill.buffer.batch_size == 32
    assert table.protocol == "speaker" and table.overrides["dm"]["iterations"] == 20000
    cfg = load_config(UnlearnConfig, [REPO / "configs" / "unlearn" / "paper.yaml"], [])
    assert "base" in cfg.unlearning.schemes
    for kind, config in (("distill", DistillConfig), ("distill-table", TableConfig), ("unlearn", UnlearnConfig)):
        for path in sorted((REPO / "configs" / kind).glob("*.yaml")):
            load_config(config, [path], [])


def test_application_presets_distill_with_the_reference_convnet():
    """The applications' distillation sections start from the quick distill preset, which narrows
    the ConvNet to width 64 for speed; their documented results used the reference width 128."""
    from audioforge.distill.config import DistillConfig
    from audioforge.distill.continual.config import ContinualConfig
    from audioforge.distill.nas.config import NASConfig
    from audioforge.distill.privacy.config import PrivacyConfig

    assert load_config(DistillConfig, [REPO / "configs" / "distill" / "quick.yaml"], []).network_kwargs == {"width": 64}
    for kind, config in (("nas", NASConfig), ("privacy", PrivacyConfig)):
        for path in sorted((REPO / "configs" / kind).glob("*.yaml")):
            assert load_config(config, [path], []).distill.network_kwargs.get("width", 128) == 128, path
    # continual distils its memories for the cells' networks: the reference width unless a preset
    # narrows both (``narrow``)
    for path in sorted((REPO / "configs" / "continual").glob("*.yaml")):
        cfg = load_config(ContinualConfig, [path], [])
        assert cfg.distill.network_kwargs == cfg.network_kwargs, path
        assert cfg.network_kwargs.get("width", 128) == (64 if path.stem == "narrow" else 128), path


@pytest.mark.parametrize("command", ["unlearn", "unlearn-bench", "classify", "rir", "distill", "distill-table",
                                     "continual", "nas", "privacy", "sweep"])
def test_each_commands_help_names_every_preset_it_accepts(command, capsys):
    """``--preset NAME`` reads configs/<command>/NAME.yaml: the help lists exactly those files."""
    from audioforge.cli import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    names = sorted(p.stem for p in (REPO / "configs" / command).glob("*.yaml"))
    assert f"a config under configs/{command}/ by name: {', '.join(names)}" in out


def test_table_overrides_refine_by_cell_and_every_table_preset_builds_its_cells():
    """``overrides.<method>-cpc<N>`` refines ``overrides.<method>`` for that CPC's cells only; every
    cell of every table preset builds a checked config (DATM's per-CPC windows fit the experts and
    its average spans less than the run), without any data."""
    from audioforge.distill.tables import TableConfig, cells

    table = load_config(TableConfig, [REPO / "configs" / "distill-table" / "table1.yaml"],
                        ["methods=[datm,mtt]", "overrides.datm-cpc10-convnet={datm: {ema_decay: 0.9}}"])
    built = dict(cells(table))
    one, ten, fifty = (built[f"datm-cpc{c}-convnet-fdmfcc"] for c in (1, 10, 50))
    assert (one.datm.min_start_epoch, one.datm.max_start_epoch, one.mtt.lr_lr) == (0, 4, 1e-7)
    assert one.iterations == ten.iterations == fifty.iterations == 250  # from ``datm``, kept
    assert ten.datm.max_start_epoch == 20 and ten.datm.ema_decay == 0.9 and ten.mtt.lr_lr == 1e-5
    assert fifty.datm.max_start_epoch == 28 and fifty.datm.expansion_iterations == 50
    assert built["mtt-cpc1-convnet-fdmfcc"].mtt.lr_lr == 1e-5  # another method's cells untouched
    for path in sorted((REPO / "configs" / "distill-table").glob("*.yaml")):
        table = load_config(TableConfig, [path], ["methods=null"])
        assert {name.split("-")[0] for name, _ in cells(table)} >= {"datm", "mtt"}, path


@pytest.mark.parametrize("key", ["dmm", "datm-1", "datm-cpc1-convnet-fdmfcc-george"])
def test_a_table_override_key_that_names_no_cell_is_refused(key):
    from audioforge.distill.tables import TableConfig

    with pytest.raises(ConfigError, match=f"overrides.{key}: expected <method>"):
        load_config(TableConfig, overrides=[f"overrides.{key}={{iterations: 3}}"])
