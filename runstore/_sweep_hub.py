"""The hub's side of sweep agents on cluster nodes (`runstore sync --watch` runs it).

Node agents (`_sweep_board.RemoteBoard`) never open the hub's store. They leave files in
`<inbox>/sweeps/`: `requests/` (a claim, or hello), `beats/` (alive), `results/` (how a
trial ended). The hub answers each request in `answers/` by claiming on a StoreBoard of
its own store, one transaction per claim as for local agents, so a configuration is
never given twice. It also writes each sweep's state to `state/<id>.json` (pause, cancel)
and, for hyperband, `stops/<run id>` for the runs a node should stop: the hub sees every
run's history, as the nodes publish it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from . import _store
from ._errors import UsageError
from ._store import _sweeps as _sql
from ._sweep_board import StoreBoard, read_json, sweeps_dir, write_atomically
from ._sweep_config import load
from ._sweep_search import hyperband_stops
from ._values import utc_now

_SWEEP_FIELDS = ("id", "sweep_key", "entity", "project", "seed", "retries", "config")


class SweepDesk:
    """Answers the node agents of every sweep in one store."""

    def __init__(self, store: Path, inbox: Path, say: Callable[[str], None]) -> None:
        self.store, self.dir, self.say = store, sweeps_dir(inbox), say
        self.boards: dict[str, StoreBoard] = {}  # by agent id
        self.beats: dict[str, Any] = {}
        self.states: dict[str, str] = {}

    def serve(self) -> None:
        """One round: beats, requests, results, states, hyperband stops."""
        if not self.dir.is_dir():
            return
        self._beats()
        self._requests()
        self._results()
        self._states()
        self._stops()

    def close(self) -> None:
        for board in self.boards.values():
            board.conn.close()
        self.boards.clear()

    def _board(self, message: dict[str, Any]) -> StoreBoard:
        agent_id = str(message["agent_id"])
        board = self.boards.get(agent_id)
        if board is None:
            board = StoreBoard(self.store, str(message["sweep"]), None, None, agent_id,
                               host=str(message.get("host")), pid=int(message.get("pid", 0)))
            self.boards[agent_id] = board
        return board

    def _beats(self) -> None:
        seen = set()
        for path in sorted((self.dir / "beats").glob("*.json")):
            beat = read_json(path)
            if not isinstance(beat, dict):
                continue
            agent_id = path.stem
            seen.add(agent_id)
            if self.beats.get(agent_id) == beat.get("beat"):
                continue  # no news since the last round: its last_seen ages
            self.beats[agent_id] = beat.get("beat")
            with contextlib.suppress(UsageError, KeyError, ValueError):
                self._board({**beat, "agent_id": agent_id}).beat()
        for agent_id in set(self.boards) - seen:  # the agent ended (or its file is gone)
            self.boards.pop(agent_id).close()
            self.beats.pop(agent_id, None)

    def _requests(self) -> None:
        for path in sorted((self.dir / "requests").glob("*.json")):
            request = read_json(path)
            try:
                if not isinstance(request, dict):
                    raise UsageError(f"request {path.name} is not readable JSON")
                answer = self._answer(request)
            except (UsageError, KeyError, ValueError) as exc:
                answer = {"error": f"the hub could not answer: {exc}"}
            write_atomically(self.dir / "answers" / path.name, answer)
            path.unlink(missing_ok=True)

    def _answer(self, request: dict[str, Any]) -> dict[str, Any]:
        board = self._board(request)
        if request.get("kind") == "hello":
            found = _sql.find_sweeps(board.conn, board.sweep.sweep_id)[0]
            return {"sweep": {k: found[k] for k in _SWEEP_FIELDS}}
        waiting: list[int] = []
        board.say_waiting = waiting.append
        claimed = board.claim()
        if isinstance(claimed, str):
            return {"wait": True, "open": waiting[-1] if waiting else 0}
        if claimed is None:
            return {}
        self.say(f"sweep {claimed.sweep_id}: configuration {claimed.seq} (attempt "
                 f"{claimed.attempt}) to agent {board.agent_id}")
        return {"trial": {k: v for k, v in asdict(claimed).items()
                          if k not in ("store", "remote")}}

    def _results(self) -> None:
        for path in sorted((self.dir / "results").glob("*.json")):
            result = read_json(path)
            if isinstance(result, dict):
                conn = _store.connect(self.store)
                try:
                    rows = _sql.find_sweeps(conn, str(result.get("sweep")))
                    if rows:
                        with _store.transaction(conn):
                            _sql.end_trial(conn, rows[0]["sweep_key"], int(result["seq"]),
                                           int(result["attempt"]), str(result["outcome"]),
                                           result.get("metric"), utc_now())
                finally:
                    conn.close()
            path.unlink(missing_ok=True)

    def _states(self) -> None:
        conn = _store.connect(self.store)
        try:
            for row in _sql.list_sweeps(conn):
                if self.states.get(row["id"]) != row["state"]:
                    write_atomically(self.dir / "state" / f"{row['id']}.json", row["state"])
                    self.states[row["id"]] = row["state"]
        finally:
            conn.close()

    def _stops(self) -> None:
        """Hyperband for the nodes' running trials, from the histories they published."""
        conn = _store.connect(self.store)
        try:
            for row in _sql.list_sweeps(conn):
                config = load(row["config"])
                if config.hyperband is None or config.metric is None \
                        or not row["open_trials"]:
                    continue
                trials = _sql.sweep_trials(conn, row["sweep_key"])
                running = [t["run_id"] for t in trials if t["outcome"] is None
                           and t["agent_id"] in self.boards]
                if not running:
                    continue
                histories = _sql.metric_histories(conn, row["entity"], row["project"],
                                                  [t["run_id"] for t in trials],
                                                  config.metric)
                for run_id in hyperband_stops(config.hyperband, config.goal, histories,
                                              running):
                    stop = self.dir / "stops" / run_id
                    if not stop.exists():
                        write_atomically(stop, "hyperband")
        finally:
            conn.close()
