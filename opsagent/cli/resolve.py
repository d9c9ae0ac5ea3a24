"""Where a command's cluster and policy come from, resolved the way kubectl users expect.

Cluster: `--cluster` / `OPSAGENT_CLUSTER` when given; otherwise the kube
credentials kubectl would use (in-cluster service account, `KUBECONFIG`, or
`~/.kube/config`, current context). With none of those the command stops and
says how to look at the simulator instead: the simulator is never chosen
silently.

Policies: `--policies` / `OPSAGENT_POLICIES`, then `./policies`, then
`$XDG_CONFIG_HOME/opsagent/policies` (`~/.config/opsagent/policies`), then the
policies shipped with opsagent. A command that falls back past `./policies`
says on stderr which folder it used.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.markup import escape

from opsagent import shipped
from opsagent.cli.common import err_console, fail

SHIPPED = shipped.root()
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
    if not quiet and why not in (f"--{kind}", f"./{kind}"):  # say so when it is not where the user would look first
        err_console.print(f"[dim]{kind}: {escape(str(chosen))} ({why})[/]", highlight=False)
    return chosen
