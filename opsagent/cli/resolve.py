"""Where a command's cluster and policy come from, resolved the way kubectl users expect.

Cluster: `--cluster` / `OPSAGENT_CLUSTER` when given; otherwise the kube
credentials kubectl would use (in-cluster service account, `KUBECONFIG`, or
`~/.kube/config`, current context). With none of those the command stops and
says how to look at the simulator instead: the simulator is never chosen
silently.

Policies: `--policies` / `OPSAGENT_POLICIES`, then `./policies`, then
`$XDG_CONFIG_HOME/opsagent/policies` (`~/.config/opsagent/policies`), then the
policies shipped with opsagent. A command that falls back past `./policies`
always says on stderr which folder it used (it can surprise); with `opsagent -v`
(or OPSAGENT_VERBOSE=1) every command says it, like `policies: ./policies
(./policies, 2 files)`. Nothing else is added, so pipes and `-o json` stay clean.

Database: `--db` / `OPSAGENT_DB` when given. Otherwise commands that read use
`$XDG_STATE_HOME/opsagent/opsagent.db` (`~/.local/state/opsagent/opsagent.db`);
commands that write create it there for a real cluster, and on the simulator
write to a temporary file removed on exit (simulated records carry a virtual
clock, and a database keeps the clock kind it was created with). Nothing is
created in the current directory unless named.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


from rich.markup import escape

from opsagent import shipped
from opsagent.cli.common import err_console, fail

SHIPPED = shipped.root()
VERBOSE = [False]   # `opsagent -v` / OPSAGENT_VERBOSE: say which folder was read even when it is the expected one
_ONE = {"policies": "policy", "playbooks": "playbook"}


def kubeconfig_source() -> str | None:
    """What kube credentials kubectl would use here, or None when there are none."""
    if os.environ.get("KUBERNETES_SERVICE_HOST") and Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists():
        return "in-cluster service account"
    env = os.environ.get("KUBECONFIG")
    if env:
        found = [p for p in env.split(os.pathsep) if p and Path(p).expanduser().is_file()]
        return f"KUBECONFIG={found[0]}" if found else None
    home = Path("~/.kube/config").expanduser()
    return str(home) if home.is_file() else None


def cluster_spec(given: str | None) -> str:
    """The `--cluster` value to use: the one given, else `kube` when credentials exist; else stop with a hint."""
    if given:
        return given
    if kubeconfig_source() is not None:
        return "kube"
    fail("no cluster to talk to: no --cluster, no KUBECONFIG, no ~/.kube/config and not inside a cluster",
         hint="point KUBECONFIG at your cluster, or try the simulated demo cluster: --cluster sim:demo")


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path("~/.config").expanduser()) / "opsagent"


def folder(given: Path | None, kind: str, *, quiet: bool = False) -> Path:
    """The `policies` or `playbooks` folder to read, by the order in the module docstring."""
    if given is not None:
        if not given.exists():
            fail(f"--{kind} {given}: no such {_ONE[kind]} directory (not a directory or file here)",
                 hint=f"pass a folder of {kind} YAML files, or write starters with: opsagent init")
        chosen, why = given, f"--{kind}"
    else:
        candidates = [(Path(kind), f"./{kind}"), (config_home() / kind, "user config"), (SHIPPED / kind, "shipped with opsagent")]
        found = [(p, why) for p, why in candidates if p.is_dir()]
        if not found:
            fail(f"no {kind} found (./{kind}, {config_home() / kind})", hint=f"pass --{kind} DIR")
        chosen, why = found[0]
    # always said when it is not where the user would look first; with -v also when it is
    if not quiet and (VERBOSE[0] or why not in (f"--{kind}", f"./{kind}")):
        count = sum(1 for p in chosen.glob("*.y*ml")) if chosen.is_dir() else 1
        err_console.print(f"[dim]{kind}: {escape(str(chosen))} ({why}, {count} file{'s' if count != 1 else ''})[/]",
                          highlight=False)
    return chosen


def state_home() -> Path:
    return Path(os.environ.get("XDG_STATE_HOME") or Path("~/.local/state").expanduser()) / "opsagent"


DEFAULT_DB_NOTE = "default: ~/.local/state/opsagent/opsagent.db; on the simulator a temporary file"


def default_db() -> Path:
    return state_home() / "opsagent.db"


def is_simulator(cluster: str) -> bool:
    return cluster == "sim" or cluster.startswith("sim:")


def writable_db(db: Path, cluster: str) -> Path:
    """The database a writing command opens (see the module docstring): `db` as given, else the state-dir file for
    a real cluster (its folder made), else a temporary file for the simulator, removed when the command ends."""
    from opsagent.cli.common import DB_DEFAULTED

    if db not in DB_DEFAULTED:
        return db
    if is_simulator(cluster):
        tmp = tempfile.mkdtemp(prefix="opsagent-sim-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        err_console.print("[dim]database: temporary (simulator); pass --db FILE to keep the records[/]", highlight=False)
        return Path(tmp) / "opsagent.db"
    try:
        db.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot create {db.parent}: {exc.strerror}", hint="pass --db FILE (or set OPSAGENT_DB) somewhere writable")
    return db


def session(cluster: str | None, db: Path) -> tuple[str, Path]:
    """The cluster and database a command that may write runs on (`cluster_spec`, then `writable_db`)."""
    spec = cluster_spec(cluster)
    return spec, writable_db(db, spec)
