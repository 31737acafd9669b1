from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from edge.cli import main
from edge.config import ConfigError, GateConfig, example_toml, load_config, parse_config, to_toml, union_members

REPO = Path(__file__).resolve().parents[2]


def _fields(model: BaseModel, path: str = "") -> list[tuple[str, object, bool]]:
    """(dotted name, field info, is a table) for every field of a config instance, recursively."""
    out: list[tuple[str, object, bool]] = []
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        out.append((f"{path}{name}", field, isinstance(value, BaseModel)))
        if isinstance(value, BaseModel):
            out += _fields(value, f"{path}{name}.")
    return out


def test_every_field_has_a_description() -> None:
    missing = [name for name, field, _ in _fields(GateConfig()) if not field.description]  # type: ignore[attr-defined]
    assert missing == []


def test_defaults_are_valid_and_round_trip_through_toml() -> None:
    cfg = GateConfig()
    again = parse_config(to_toml(cfg))
    assert again.model_dump() == cfg.model_dump()


def test_unknown_key_is_refused_with_its_line() -> None:
    text = "version = 1\n\n[gate]\nid = \"g1\"\n\n[vision.detector]\nscore_treshold = 0.5\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert any(p.startswith("line 7:") and "score_treshold" in p for p in err.value.problems), err.value.problems


def test_bad_value_names_its_line_and_field() -> None:
    text = "[vision.match]\nmargin = 0.05\nthreshold = 7\n"
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    assert err.value.problems[0].startswith("line 3: vision.match.threshold")


def test_toml_syntax_error_is_reported() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("[gate\nid=1")
    assert "TOML syntax" in err.value.problems[0]


def test_relative_paths_resolve_against_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "gate.toml").write_text('[gate]\ndata_dir = "data"\n')
    cfg = load_config(tmp_path / "gate.toml")
    assert cfg.gate.data_dir == (tmp_path / "data").resolve()


def test_example_and_demo_configs_are_valid() -> None:
    for name in ("gate.example.toml", "demo.toml"):
        load_config(REPO / "config" / name)


def test_example_config_is_current() -> None:
    assert (REPO / "config" / "gate.example.toml").read_text() == example_toml(), (
        "regenerate with: gate config example > config/gate.example.toml")


def test_example_config_documents_every_option() -> None:
    text = example_toml()
    for name, _field, table in _fields(GateConfig()):
        if table:
            assert f"[{name}]" in text, name
        else:
            assert f"{name.rsplit('.', 1)[-1]} =" in text, name


def _table_blocks(text: str, table: str) -> list[list[str]]:
    """The [table] of the example and, uncommented, each commented-out `# [table]` block after it."""
    lines = text.split("\n")
    blocks: list[list[str]] = []
    for i, line in enumerate(lines):
        if line == f"[{table}]":
            block = [line]
            for nxt in lines[i + 1:]:
                if not nxt:
                    break
                block.append(nxt)
            blocks.append(block)
        elif line == f"# [{table}]":
            block = ["[" + table + "]"]
            for nxt in lines[i + 1:]:
                if not nxt.startswith("# "):
                    break
                block.append(nxt[2:])
            blocks.append(block)
    return blocks


@pytest.mark.parametrize("section", ["thermal", "relay"])
def test_example_config_documents_every_driver_type(section: str) -> None:
    """Every member of the `type`-tagged union appears once, as the active table or a commented block;
    each block, uncommented, is a valid config of exactly that type with its defaults, and every option
    of the type is in it, preceded by its description."""
    field = GateConfig.model_fields[section]
    members = union_members(field)
    assert len(members) >= 4, members
    blocks = _table_blocks(example_toml(), section)
    by_type = {}
    for block in blocks:
        data = tomllib.loads("\n".join(block))[section]
        by_type[data["type"]] = block
    assert len(by_type) == len(blocks)  # no type twice
    active = getattr(GateConfig(), section)
    for member in members:
        default = member()
        kind = default.type  # type: ignore[attr-defined]
        assert kind in by_type, f"[{section}] type {kind!r} is not in the example"
        block = by_type[kind]
        cfg = parse_config("\n".join(block))
        expected = active if isinstance(active, member) else default
        assert getattr(cfg, section) == expected, kind
        for name, info in member.model_fields.items():
            key = next((i for i, line in enumerate(block)
                        if line.startswith(f"{name} = ") or line == f"# {name} = (unset)"), None)
            assert key is not None, f"[{section}] type {kind!r}: option {name!r} is not documented"
            assert info.description and block[key - 1] == f"# {info.description}", (kind, name)
    assert set(by_type) == {m().type for m in members}  # type: ignore[attr-defined]


def test_cli_config_check_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[gate]\nid = \"has spaces\"\n")
    assert main(["config", "check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "line 2: gate.id" in err
    good = tmp_path / "good.toml"
    good.write_text("[gate]\nid = \"east-1\"\n")
    assert main(["config", "check", str(good)]) == 0
    assert main(["config", "show", "--json", "--config", str(good)]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert shown["gate"]["id"] == "east-1"
    assert shown["vision"]["detector"]["type"] == "yunet"


def test_policy_gate_id_is_refused_with_the_place_of_the_gate_id(tmp_path: Path) -> None:
    """[policy] gate_id used to be overwritten silently by [gate] id; now it is an error that says where."""
    f = tmp_path / "gate.toml"
    f.write_text('version = 1\n[gate]\nid = "north"\n[policy]\ngate_id = "south"\n')
    with pytest.raises(ConfigError) as err:
        load_config(f)
    assert any("line 4" in p and "[gate] id" in p for p in err.value.problems), err.value.problems


def test_every_section_has_the_one_base_that_refuses_unknown_keys() -> None:
    from drivers.config import DriverConfig
    from edge.config import Section

    assert Section is DriverConfig

    def sections(model: type[BaseModel]) -> list[type[BaseModel]]:
        found = [model]
        for field in model.model_fields.values():
            members = union_members(field) or [field.annotation]
            for m in members:
                if isinstance(m, type) and issubclass(m, BaseModel):
                    found += sections(m)
        return found

    classes = sections(GateConfig)
    assert len(classes) > 15 and all(issubclass(c, Section) for c in classes), [
        c.__name__ for c in classes if not issubclass(c, Section)]
