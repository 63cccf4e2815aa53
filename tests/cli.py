"""`scout ...` run in-process as a user types it: the one runner of every CLI test."""

from __future__ import annotations

from dataclasses import dataclass, field

from click.testing import Result
from typer.testing import CliRunner

from bot.cli import app


@dataclass
class Scout:
    """Call it with the words after `scout`; `env` is the environment the command sees
    (on top of the test's own). A bug's exception escapes with its traceback, and no
    output may carry one: a user never sees a traceback for a mistake."""

    env: dict[str, str] = field(default_factory=dict)

    def __call__(self, *args: str, code: int | None = 0, input: str | None = None) -> Result:
        result = CliRunner().invoke(app, list(args), env=self.env, input=input)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        if code is not None:
            assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return result
