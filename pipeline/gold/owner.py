"""One gold owner per data root: the Silver -> Gold state that gold is published from.

The state is SQLite on a local disk, so with several hosts on one shared data root each host
has its own state folder. Two states publishing into one gold would each be right and together
wrong. So the data root records which state owns gold (`_gold_owner.json`: the state's random id
and its host, for people), each state holds its id (`state/state_id`), and only the run whose state
carries the owner's id builds gold and the report; a run elsewhere cleans silver only and says who
owns gold. The first gold run on a data root claims it; handing gold to another host is explicit
(`run.py --take-gold`).
"""
from __future__ import annotations

import json
import socket
import uuid
from dataclasses import dataclass

from pipeline.errors import PipelineError
from pipeline.storage.atomic import create_text_once, write_text_atomic
from pipeline.storage.layout import DataLayout


@dataclass(frozen=True)
class Ownership:
    owner_host: str
    ours: bool
    owner_state_dir: str = ""


def this_host() -> str:
    return socket.gethostname()


def _state_id(layout: DataLayout) -> str | None:
    try:
        return layout.state_id_path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _ensure_state_id(layout: DataLayout) -> str:
    """Two runs starting at once on one state must agree on its id: the first creation wins."""
    existing = _state_id(layout)
    if existing:
        return existing
    create_text_once(layout.state_id_path, uuid.uuid4().hex)
    return str(_state_id(layout))


def _record(layout: DataLayout, state_id: str) -> dict:
    return {"state_id": state_id, "host": this_host(), "state_dir": str(layout.state_dir.resolve())}


def read_owner(layout: DataLayout) -> dict | None:
    path = layout.gold_owner_path
    try:
        record = json.loads(layout.store.read_text(path))
        return {"state_id": str(record["state_id"]), "host": str(record["host"]), "state_dir": str(record.get("state_dir", ""))}
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        raise PipelineError(f"{path} is unreadable; run `python run.py --take-gold` on the host that should build gold") from None


def claim(layout: DataLayout) -> Ownership:
    """This state's ownership of gold; the first gold run on a data root claims it (atomically)."""
    record = read_owner(layout)
    if record is None:
        mine = _ensure_state_id(layout)
        if layout.store.create_once(layout.gold_owner_path, json.dumps(_record(layout, mine))):
            return Ownership(this_host(), True)
        return claim(layout)  # another run or host claimed it first
    mine = _state_id(layout)
    if mine is None and record["host"] == this_host() and record["state_dir"] == str(layout.state_dir.resolve()):
        # The owner's state folder was emptied by hand: it is still the owner (an empty state is
        # rebuilt from silver: see silver_to_gold.stale_state_reason).
        write_text_atomic(layout.state_id_path, record["state_id"])
        mine = record["state_id"]
    return Ownership(record["host"], mine == record["state_id"], record["state_dir"])


def not_owner_note(layout: DataLayout, ownership: Ownership) -> str:
    """What a run that may not build gold says: where gold is built, and the command that moves it here."""
    where = (f"from another state folder on this host ({ownership.owner_state_dir}), not from {layout.state_dir.resolve()}"
             if ownership.owner_host == this_host() else f"on host {ownership.owner_host}")
    return (f"gold of {layout.root} is built {where}: this run cleans silver only "
            "(`python run.py --take-gold` here moves gold to this state)")


def take_over(layout: DataLayout) -> str | None:
    """Make this host's state the gold owner (call under the gold lock); returns the previous host.
    Its state is continued only if it is still a prefix of today's silver, else rebuilt."""
    previous = read_owner(layout)
    mine = _ensure_state_id(layout)
    layout.store.write_text(layout.gold_owner_path, json.dumps(_record(layout, mine)))
    return previous["host"] if previous else None


def refuse_unless_gold_owner(layout: DataLayout) -> None:
    """The last guard of SilverToGold and Report: never build gold from a state that does not own it."""
    ownership = claim(layout)
    if not ownership.ours:
        raise PipelineError(f"gold of {layout.root} is built on host {ownership.owner_host}, not from this host's state "
                            f"({layout.state_dir}); run `python run.py --take-gold` here to move it")
