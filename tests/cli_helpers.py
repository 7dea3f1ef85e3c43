"""Helpers shared by the command-line test modules (tests/ is on sys.path under pytest)."""

from fcn_scratch.cli import main


def error_line(capsys, argv):
    """Run argv; it must fail with exit 2 and exactly one 'fcn-scratch: error:' line on stderr."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fcn-scratch: error: "), err
    assert "Traceback" not in err
    return lines[0]
