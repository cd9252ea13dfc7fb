"""One vocabulary across commands: ``-o/--output`` for what a command writes, ``--reference`` for
what it scores against, one ``--device`` default, and every option's default in its help."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from medrestore.cli.main import COMMANDS, HelpFormatter, build_parser
from medrestore.cli.options import DEFAULT_DEVICE
from medrestore.core.device import select_device
from medrestore.training.config import TrainConfig

# commands that only print (a table, a report, a listing) or serve pages, and write no file
PRINTING = {"evaluate", "models", "estimate-delay", "nema", "view", "info"}
# commands that score against a reference image
SCORING = {"evaluate", "recon", "report", "view"}


def _leaves(parser: argparse.ArgumentParser, name: str) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser that parses options: ``("phantom paper", parser)`` for nested sub-commands."""
    nested = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    if not nested:
        yield name, parser
    for action in nested:
        for sub_name, sub in action.choices.items():
            yield from _leaves(sub, f"{name} {sub_name}".strip())


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    leaves = list(_leaves(build_parser(), ""))
    assert {name.split()[0] for name, _ in leaves} == set(COMMANDS)
    return leaves


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def test_every_writing_command_takes_dash_o_output() -> None:
    for name, parser in _commands():
        options = _options(parser)
        if name.split()[0] in PRINTING:
            assert "-o" not in options, name
            continue
        assert "-o" in options and options["-o"] is options.get("--output"), name
        assert options["-o"].dest == "output", name
        # no other spelling of the output left (only --output-ext, the batch outputs' extension)
        others = {option for option in options if option.startswith("--out") and option not in ("--output", "--output-ext")}
        assert others <= set(options["--output"].option_strings), (name, others)


def test_every_scoring_command_takes_reference() -> None:
    for name, parser in _commands():
        options = _options(parser)
        spelled = {option for option in options if option.startswith("--ref")}
        if name in SCORING:
            assert options["--reference"].dest == "reference", name
            assert spelled == {"--reference", "--ref"}, name  # the older spelling stays an alias
            assert options["--ref"] is options["--reference"], name
        else:
            assert not spelled, name


def test_one_device_default() -> None:
    defaults = {name: _options(parser)["--device"].default for name, parser in _commands() if "--device" in _options(parser)}
    assert {"denoise", "recon", "superres", "denoise-eval", "train"} <= set(defaults)
    train = defaults.pop("train")
    assert train is None and TrainConfig().device == DEFAULT_DEVICE  # train: the config's, whose default is the same
    assert set(defaults.values()) == {DEFAULT_DEVICE}
    assert select_device() == select_device(DEFAULT_DEVICE)  # the library's own default


def test_every_option_with_a_default_shows_it() -> None:
    formatter = HelpFormatter("medrestore")
    for name, parser in _commands():
        assert parser.formatter_class is HelpFormatter, name
        for action in parser._actions:
            shown = formatter._get_help_string(action) or ""
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS, []):
                assert "default" in shown.lower(), (name, action.option_strings)


def test_help_shows_defaults_once() -> None:
    text = build_parser("superres")._subparsers._group_actions[0].choices["superres"].format_help()  # type: ignore[union-attr]
    assert "(default: auto)" in " ".join(text.split())  # --device, added by the formatter
    assert "(default: refuse)" not in text  # --nonfinite names its default itself


def test_old_spellings_still_parse() -> None:
    parser = build_parser()
    assert parser.parse_args(["evaluate", "--pred", "p.nii", "--ref", "r.nii"]).reference == "r.nii"
    assert parser.parse_args(["recon", "k.npz", "-o", "x.nii", "--ref", "r.nii"]).reference == "r.nii"
    assert parser.parse_args(["demo", "--out", "d"]).output == "d"
    assert parser.parse_args(["train", "--config", "c.yaml", "--output-dir", "d"]).output == "d"
    assert parser.parse_args(["superres", "a.nii", "-o", "b.nii"]).device == DEFAULT_DEVICE
