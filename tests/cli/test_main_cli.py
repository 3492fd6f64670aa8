"""The top-level command line: -V, commands whose extra is missing, interrupts."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import simloss
import simloss.cli
from simloss._optional import install_hint, missing_from_extra
from simloss.cli import main


def test_version_flag_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    for flag in ("-V", "--version"):
        with pytest.raises(SystemExit) as exit_info:
            main([flag])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.strip() == f"simloss {simloss.__version__}"
    assert importlib.metadata.version("simloss") == simloss.__version__


def test_missing_extra_is_listed_and_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(simloss.cli, "missing_from_extra", lambda extra: ["optuna", "scipy"])
    with pytest.raises(SystemExit):
        main(["--help"])
    listing = capsys.readouterr().out
    assert "tune" in listing and "[needs simloss[experiments]]" in listing
    assert "matrix" in listing  # the core command stays as it is
    for argv in (["tune", "--budget", "5", "--out", "x"], ["sweep", "--help"], ["demo"]):
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert err.startswith(f"simloss {argv[0]}: error: needs the `experiments` extra")
        assert "(not installed: optuna, scipy)" in err
        assert install_hint("experiments") in err


def test_missing_from_extra_reads_the_installed_metadata() -> None:
    # This environment has every extra (the `test` extra pulls the others in).
    assert missing_from_extra("experiments") == []
    assert missing_from_extra("test") == []
    with pytest.raises(ValueError, match="Expected one of simloss's extras"):
        missing_from_extra("no-such-extra")


def test_interrupt_while_building_the_parser_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted() -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(simloss.cli, "build_parser", interrupted)
    assert main(["demo"]) == 130
    assert capsys.readouterr().err == "simloss: interrupted\n"


def test_the_console_script_reaches_main_before_torch_is_imported() -> None:
    """The script's ``from simloss.cli import main`` is light: a Ctrl-C while torch and the
    commands load (seconds) lands inside main's handler (one line), not in a traceback."""
    done = subprocess.run(
        [sys.executable, "-c", "import sys, simloss.cli; print('torch' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_public_names_load_on_first_use() -> None:
    from simloss.functional import sim_loss
    from simloss.similarity import ClassOrder

    assert simloss.sim_loss is sim_loss and simloss.ClassOrder is ClassOrder
    assert simloss.metrics.__name__ == "simloss.metrics"
    assert set(simloss.__all__) <= set(dir(simloss))
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        _ = simloss.no_such_name
