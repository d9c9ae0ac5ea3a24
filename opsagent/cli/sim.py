"""`opsagent sim`: run a simulated GPU cluster scenario (placeholder while the simulator lands)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("sim")
    def sim_command() -> None:
        """Run a simulated cluster scenario.\n\nExample: opsagent sim demo --hours 2"""
        typer.echo("the simulator is not available yet")
