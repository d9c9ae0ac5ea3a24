"""Red-team: the image and rollout tools against a cluster that lies and a history that bounces.

Spec:
- An image reference is one plain-ASCII word of at most 400 characters: a trailing newline, a control or
  zero-width character, a full-width digit or a Cyrillic letter that reads as Latin is refused, and the
  refusal names the field and the character.
- "Roll back" never goes to an image without a tag or digest, nor to `:latest`: it refuses and says why,
  rather than reaching further back or guessing a tag. The image_pull_failed detector hands such a
  workload to a person.
- Rolling back twice does not bounce: an image the history shows was already rolled back from is
  refused as a rollback target (set_image without an image, undo_rollout to its revision, the detector's
  proposal), and it no longer counts as an image the workload "ran before" for the policy.
- The simulator keeps a ReplicaSet's creation time when a rollback brings it back, as Kubernetes does, so
  the history shows the going-back.
- ReplicaSets a Deployment does not control (labels only, an ownerReference by name without its uid, a
  reference that is not the controller) are not its history, and revision numbers above the Deployment's
  own, or claimed by two ReplicaSets, steer nothing: not the snapshot's history, not `rollout undo`.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from detect_sample import NOW, troubled
from pydantic import ValidationError

from opsagent.cluster.sim import SimCluster
from opsagent.cluster.sim.scenario import parse_scenario
from opsagent.detect import detect
from opsagent.model import Revision, ToolCall
from opsagent.model.images import previous_images, rollback_target, unpinned
from opsagent.policy import NO_COUNTS, decide, load_policy
from tools import REGISTRY
from tools.base import ToolContext
from tools.images import SetImageIn

ROOT = Path(__file__).resolve().parents[1]
RANKER = "search/ranker"

# --- image references --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image,said", [
    ("reg/app:1.0\n", "U+000A control character"),
    ("reg/app:1.0\x1b[2J", "U+001B"),
    ("reg/app:1.0\u200b", "ZERO WIDTH SPACE"),
    ("reg/app:\uff11.0", "FULLWIDTH DIGIT ONE, which looks like '1'"),
    ("r\u0435g/app:1.0", "CYRILLIC SMALL LETTER IE, which looks like 'e'"),
    ("reg/app:v\u00e9", "LATIN SMALL LETTER E WITH ACUTE"),
    ("reg/app:1.0\u0661", "ARABIC-INDIC DIGIT ONE"),
])
def test_an_image_reference_is_plain_ascii_and_the_refusal_names_field_and_character(image, said):
    with pytest.raises(ValidationError) as caught:
        SetImageIn(namespace="inference", name="embedder", image=image)
    text = str(caught.value)
    assert said in text and "image " in text and "plain ASCII" in text


def test_an_image_reference_has_a_length_cap():
    assert unpinned("reg/app:" + "1" * 120) is None
    assert "at most 400" in (unpinned("reg/" + "a" * 400 + ":1") or "")


# --- roll back: unpinned history --------------------------------------------------------------------------------------


def _ranker(history: tuple[Revision, ...]):
    snap, intents = troubled()
    workloads = tuple(w.model_copy(update={"history": history, "revision": history[-1].revision,
                                           "rollout": w.rollout.model_copy(update={"revision": history[-1].revision})})
                      if w.key == RANKER else w for w in snap.workloads)
    snap = snap.model_copy(update={"workloads": workloads})
    pods = tuple(p.model_copy(update={"revision": history[-1].revision}) if p.workload and str(p.workload) == RANKER
                 else p for p in snap.pods)
    return snap.model_copy(update={"pods": pods}), intents


@pytest.mark.parametrize("before", ["reg/ranker", "reg/ranker:latest", "reg/ranker:LATEST"])
def test_an_unpinned_image_in_the_history_is_never_proposed_nor_guessed(before):
    snap, intents = _ranker((Revision(revision=1, image=before), Revision(revision=2, image="reg/ranker:9.9")))
    target = rollback_target(snap.workload(RANKER))
    assert target.image is None and ("no tag or digest" in target.why or "latest" in target.why)
    f = {f.id: f for f in detect(snap, intents=intents, now=NOW)}[f"image_pull_failed:{RANKER}"]
    assert (f.details["next_action"], f.details["rollback_image"]) == ("escalate", None)
    assert "nothing guesses a tag" in f.details["why"]


def test_an_unpinned_image_further_back_is_not_reached_for_either():
    """The newest earlier image decides: a rollback never silently reaches past it to an older one."""
    w = _ranker((Revision(revision=1, image="reg/ranker:1.0"), Revision(revision=2, image="reg/ranker"),
                 Revision(revision=3, image="reg/ranker:9.9")))[0].workload(RANKER)
    assert rollback_target(w).image is None


# --- roll back: no ping-pong --------------------------------------------------------------------------------------------

SCENARIO = """
name: images
start: '2026-01-05T09:00:00Z'
nodes:
- name: gpu-a
  gpus: [{model: L40S, count: 2}]
workloads:
- {namespace: inference, name: embedder, image: 'reg/embedder:2.3.0', gpus: 1}
"""


@pytest.fixture()
def sim() -> SimCluster:
    return SimCluster(parse_scenario(SCENARIO))


def _run(sim: SimCluster, tool: str, **args):
    ctx = ToolContext(cluster=sim, clock=sim.clock, observe=sim.snapshot)  # type: ignore[arg-type]
    t = REGISTRY[tool]
    return t.run(ctx, t.input_model.model_validate({"namespace": "inference", "name": "embedder", **args}))


def test_rolling_back_twice_with_set_image_does_not_bounce(sim):
    assert _run(sim, "set_image", image="reg/embedder:2.4.0").status == "ok"
    sim.advance(600)
    back = _run(sim, "set_image")
    assert back.status == "ok" and back.data["image"] == "reg/embedder:2.3.0"
    sim.advance(600)
    revision = sim.snapshot().workload("inference/embedder").revision
    again = _run(sim, "set_image")
    assert again.status == "error" and "already rolled back from" in again.message and "reg/embedder:2.4.0" in again.message
    assert sim.snapshot().workload("inference/embedder").revision == revision  # nothing written


def test_rolling_back_twice_with_undo_does_not_bounce_and_the_history_shows_it(sim):
    sim.advance(3600)  # the release comes an hour after the first rollout
    assert _run(sim, "set_image", image="reg/embedder:2.4.0").status == "ok"
    sim.advance(600)
    assert _run(sim, "undo_rollout").status == "ok"
    sim.advance(600)
    w = sim.snapshot().workload("inference/embedder")
    assert w.image == "reg/embedder:2.3.0"
    # the ReplicaSet that came back keeps its creation time, so the history shows it ran before 2.4.0
    assert [r.created_at for r in w.history if r.image == "reg/embedder:2.3.0"][0] < \
        [r.created_at for r in w.history if r.image == "reg/embedder:2.4.0"][0]
    for tool, args in (("undo_rollout", {}), ("undo_rollout", {"to_revision": 2}), ("set_image", {})):
        out = _run(sim, tool, **args)
        assert out.status == "error" and "bounce" in out.message, (tool, args, out)
    assert sim.snapshot().workload("inference/embedder").revision == w.revision


def test_the_detector_hands_over_instead_of_bouncing():
    history = (Revision(revision=1, image="reg/ranker:1.0"), Revision(revision=2, image="reg/ranker:9.9"),
               Revision(revision=3, image="reg/ranker:1.0"))
    snap, intents = _ranker(history)
    snap = snap.model_copy(update={"workloads": tuple(w.model_copy(update={"image": "reg/ranker:1.0"})
                                                      if w.key == RANKER else w for w in snap.workloads)})
    snap = snap.model_copy(update={"events": tuple(e.model_copy(update={"message": e.message.replace("9.9", "1.0")})
                                                   for e in snap.events),
                                   "pods": tuple(p.model_copy(update={"message": (p.message or "").replace("9.9", "1.0")})
                                                 for p in snap.pods)})
    f = {f.id: f for f in detect(snap, intents=intents, now=NOW)}[f"image_pull_failed:{RANKER}"]
    assert (f.details["next_action"], f.details["rollback_image"]) == ("escalate", None), f.details
    assert "already rolled back from at revision 3" in f.details["why"]


def test_an_image_rolled_back_from_is_a_new_image_to_the_policy():
    """It ran, and failed: going back to it needs a platform lead like an image the workload never ran."""
    history = (Revision(revision=1, image="reg/ranker:1.0"), Revision(revision=2, image="reg/ranker:9.9"),
               Revision(revision=3, image="reg/ranker:1.0"))
    snap, _ = _ranker(history)
    w = snap.workload(RANKER)
    assert previous_images(w) == ["reg/ranker:1.0"]
    policy = load_policy(ROOT / "policies", tool_risks={n: t.risk for n, t in REGISTRY.items()})
    args = {"namespace": "search", "name": "ranker", "image": "reg/ranker:9.9"}
    for actor in ("carol", "daemon"):
        call = ToolCall(tool="set_image", args=args, actor=actor, channel="daemon" if actor == "daemon" else "slack")
        d = decide(policy, call=call, risk="write", target=SetImageIn.model_validate(args).target(), snapshot=snap,
                   now=NOW, counts=NO_COUNTS)
        assert (d.effect, d.rule.name) == ("require_approval", "new-images-need-a-lead"), (actor, d)


def test_a_kube_style_going_back_is_read_from_creation_times():
    """Kubernetes renumbers the ReplicaSet that comes back; its creation time still shows it ran first."""
    history = (Revision(revision=2, image="reg/ranker:9.9", created_at=NOW - timedelta(hours=1)),
               Revision(revision=3, image="reg/ranker:1.0", created_at=NOW - timedelta(days=3)))
    w = _ranker(history)[0].workload(RANKER).model_copy(update={"image": "reg/ranker:1.0"})
    target = rollback_target(w)
    assert target.image is None and "already rolled back from at revision 3" in target.why


def test_a_plain_release_history_still_rolls_back():
    history = (Revision(revision=1, image="reg/ranker:1.0"), Revision(revision=2, image="reg/ranker:1.0"),
               Revision(revision=3, image="reg/ranker:1.1"), Revision(revision=4, image="reg/ranker:9.9"))
    w = _ranker(history)[0].workload(RANKER)
    assert rollback_target(w).image == "reg/ranker:1.1"



# --- planted ReplicaSets and forged revisions, on the kube adapter against the emulator -------------------------------

DICE_UID = "7551e949-42d1-4061-83c5-9da107186e47"


def _planted(name: str, image: str, revision: str, *, owner: dict | None) -> dict:
    from kube_harness import fixture

    rs = fixture("replicaset-dice-roller-rev2.json")
    rs["metadata"].update(name=name, uid=f"{name}-uid", creationTimestamp="2026-01-05T11:55:00Z")
    rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = revision
    rs["metadata"]["ownerReferences"] = [owner] if owner else []
    rs["spec"]["template"]["spec"]["containers"][0]["image"] = image
    return rs


def _ref(**changes) -> dict:
    ref = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "dice-roller", "uid": DICE_UID, "controller": True,
           "blockOwnerDeletion": True}
    ref.update(changes)
    return {k: v for k, v in ref.items() if v is not None}


PLANTED = [
    _planted("labels-only", "evil/a:1", "4", owner=None),                       # matching labels, no owner at all
    _planted("by-name", "evil/b:1", "4", owner=_ref(uid=None)),                 # the Deployment's name, no uid
    _planted("wrong-uid", "evil/c:1", "4", owner=_ref(uid="0000-not-the-deployment")),
    _planted("not-controller", "evil/d:1", "4", owner=_ref(controller=None)),   # right uid, but not the controller
    _planted("forged-high", "evil/e:1", "99999", owner=_ref()),                 # controlled, revision above the Deployment's
]


@pytest.fixture()
def planted():
    from kube_harness import Emulator
    from test_kube_images import NOT_FOUND, objects
    from test_kube_read import NOW as KUBE_NOW

    from opsagent.clock import VirtualClock
    from opsagent.cluster.kube import KubeCluster, api_client_for_url

    with Emulator() as emu:
        for obj in [*objects(NOT_FOUND), *PLANTED]:
            emu.seed(obj)
        yield KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(KUBE_NOW)), emu


def test_planted_replicasets_are_no_part_of_the_history(planted):
    cluster, emu = planted
    w = cluster.snapshot().workload("default/dice-roller")
    assert [(r.revision, r.image) for r in w.history] == [(1, "nginx:1.14.1"), (2, "nginx:1.14.2"), (3, "nginx:1.99.0")]
    assert rollback_target(w).image == "nginx:1.14.2" and not any("evil" in i for i in previous_images(w))
    assert not any(p.workload for p in cluster.snapshot().pods if p.name.startswith(("labels-only", "by-name")))


def test_undo_goes_to_the_real_previous_revision_and_a_forged_one_cannot_be_named(planted):
    from opsagent.cluster.port import Invalid

    cluster, emu = planted
    with pytest.raises(Invalid, match="unable to find revision 99999"):
        cluster.undo_rollout(ref=cluster.snapshot().workload("default/dice-roller").ref, to_revision=99999)
    with pytest.raises(Invalid, match=r"known revisions: \[1, 2, 3\]"):
        cluster.undo_rollout(ref=cluster.snapshot().workload("default/dice-roller").ref, to_revision=4)
    before = len(emu.requests())
    ctx = ToolContext(cluster=cluster, clock=cluster.clock, observe=cluster.snapshot)
    tool = REGISTRY["undo_rollout"]
    out = tool.run(ctx, tool.input_model.model_validate({"namespace": "default", "name": "dice-roller"}))
    assert out.status == "ok", out.message
    [patch] = [r for r in emu.requests()[before:] if r["method"] == "PATCH"]
    template = next(op["value"] for op in patch["body"] if op["path"] == "/spec/template")
    assert template["spec"]["containers"][0]["image"] == "nginx:1.14.2"


def test_two_replicasets_claiming_one_revision_steer_nothing():
    from kube_harness import Emulator
    from test_kube_images import NOT_FOUND, objects
    from test_kube_read import NOW as KUBE_NOW

    from opsagent.clock import VirtualClock
    from opsagent.cluster.kube import KubeCluster, api_client_for_url

    twin = _planted("twin-of-2", "evil/f:1", "2", owner=_ref())
    with Emulator() as emu:
        for obj in [*objects(NOT_FOUND), twin]:
            emu.seed(obj)
        cluster = KubeCluster(api_client_for_url(emu.url), clock=VirtualClock(KUBE_NOW))
        w = cluster.snapshot().workload("default/dice-roller")
        assert [r.revision for r in w.history] == [1, 3] and "evil/f:1" not in previous_images(w)
        assert rollback_target(w).image == "nginx:1.14.1"


# --- look-alike letters in chat ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("line,field,char", [
    ("scale \u0455ystem/x to 2", "namespace", "U+0455 CYRILLIC SMALL LETTER DZE, which looks like 's'"),
    ("scale \u212aube/x to 2", "namespace", "U+212A KELVIN SIGN"),     # [a-z] with IGNORECASE matched it, then lower()
    ("scale \u017fys/x to 2", "namespace", "U+017F LATIN SMALL LETTER LONG S"),  # matched, and stayed 'ſys'
    ("roll back inference/\uff45mbedder", "name", "FULLWIDTH LATIN SMALL LETTER E"),
    ("drain gpu-\u212a", "node", "KELVIN SIGN"),
    ("set image inference/embedder to reg/embedder:2.5.0\u200b", "image", "ZERO WIDTH SPACE"),
    ("set image inference/embedder to r\u0435g/embedder:2.5.0", "image", "CYRILLIC SMALL LETTER IE"),
    ("set image inference/embedder container m\u0430in to reg/embedder:2.5.0", "container", "CYRILLIC SMALL LETTER A"),
    ("scale inference/embedder to \uff13", "number", "FULLWIDTH DIGIT THREE"),
    ("rollback inference/embedder to \u0663", "revision", "ARABIC-INDIC DIGIT THREE"),
    ("\u0455cale inference/embedder to 2", "command word", "CYRILLIC SMALL LETTER DZE"),
])
def test_a_look_alike_letter_in_chat_is_refused_naming_the_field(line, field, char):
    from opsagent.chat.grammar import NotUnderstood, parse

    got = parse(line)
    assert isinstance(got, NotUnderstood), got
    assert got.reason.startswith(f"the {field} ") and char in got.reason and "plain ASCII" in got.reason


def test_free_text_may_be_in_any_script_and_names_in_ascii_still_parse():
    from opsagent.chat.grammar import Command, parse

    for line in ("approve 3 d\u00e9j\u00e0 vu", "reject 4 because \u043d\u0435\u0442", "roll back inference/embedder",
                 "set image inference/embedder to reg/embedder:2.5.0", "drain gpu-b"):
        assert isinstance(parse(line), Command), line
    assert parse("reject 4 because \u043d\u0435\u0442").note == "\u043d\u0435\u0442"


def test_a_look_alike_in_chat_runs_nothing_and_the_reply_says_why(tmp_path):
    from opsagent.chat.wiring import build_runtime
    from test_images import CHAT_SCENARIO

    scenario = tmp_path / "images.yaml"
    scenario.write_text(CHAT_SCENARIO, encoding="utf-8")
    runtime = build_runtime(cluster=f"sim:{scenario}", policies=ROOT / "policies", db=tmp_path / "audit.db")
    try:
        before = runtime.cluster.snapshot().workload("inference/embedder").revision
        reply = runtime.service.handle("set image inference/embedder to registry.internal/inference/\u0435mbedder:2.5.0",
                                       actor="alice", channel="slack")
        assert reply.done == [] and reply.pending == [] and "the image" in reply.text and "U+0435" in reply.text
        assert runtime.cluster.snapshot().workload("inference/embedder").revision == before
    finally:
        runtime.close()
