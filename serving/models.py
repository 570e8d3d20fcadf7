"""Loading a registered policy version for the API, without stalling the answers in flight.

At start the champion is loaded in the server's own process: nothing is being answered
yet. Once a version answers requests, a new one (a hot reload, the poll, a challenger) is
loaded by :func:`load_apart` in a helper process: MLflow's loading, the catalog's YAML and
the TreeSHAP tables run there, on another core, and the server only unpickles the
finished version (about 12 ms for the demo model, in short steps) before swapping it in.
Loaded in a thread of the server instead, that work (about 200 ms of Python) would take
Python's lock from the event loop for as long, and every request in flight would wait.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import pickle
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from nba.config import Settings
from nba.exceptions import NBAError
from nba.policy.design import profile_vector
from nba.tracking import CHAMPION, ModelRef, resolve

UNKNOWN_PROFILE = profile_vector({})  # every feature unknown
LOAD_TIMEOUT_SECONDS = 300.0  # a helper process that takes longer is stopped


@dataclass(frozen=True)
class LoadedModel:
    """A registered policy version, loaded once."""

    policy: Any  # nba.policy.policy.Policy
    version: str
    default_profile: np.ndarray
    action_index: dict[str, int]  # catalog id -> position, for the contact history
    action_names: dict[str, str]  # catalog id -> name, for the suppressed actions
    objective: str = "acceptance"  # what the policy ranks by (see pipelines.train)
    objective_note: str | None = None


def load_champion(settings: Settings, ref: ModelRef | None = None) -> LoadedModel:
    """``models:/nba-policy@champion`` (or ``ref``), loaded through MLflow in this process
    with its TreeSHAP tables compiled; raises NBAError if there is none."""
    import mlflow

    ref = ref or resolve(CHAMPION, settings)
    model = mlflow.pyfunc.load_model(ref.pinned_uri).unwrap_python_model()
    model.policy.model.prepare()
    if model.policy.uplift is not None:
        model.policy.uplift.forest()  # compiled now, not at the first answer
    # Versions logged before the typical profile existed rank an unreadable profile as
    # all-unknown (NaN) instead.
    default = getattr(model, "default_profile", UNKNOWN_PROFILE)
    model.policy.model.predict_threads = 1
    if model.policy.uplift is not None:
        model.policy.uplift.predict_threads = 1  # a dozen rows: threads only cost
    actions = model.policy.catalog.actions
    objective = getattr(model, "objective", {})
    loaded = LoadedModel(
        model.policy,
        ref.version,
        default,
        {a.id: j for j, a in enumerate(actions)},
        {a.id: a.name for a in actions},
        "incremental" if model.policy.uplift is not None else "acceptance",
        objective.get("note"),
    )
    settle_heap()
    return loaded


def load_apart(settings: Settings, ref: ModelRef) -> LoadedModel:
    """:func:`load_champion` in a helper process; this process only unpickles the result.
    Raises NBAError if the helper fails or takes longer than ``LOAD_TIMEOUT_SECONDS``."""
    context = multiprocessing.get_context("spawn")  # no fork of a threaded server
    receive, send = context.Pipe(duplex=False)
    helper = context.Process(
        target=_load_and_send, args=(settings, ref, send), name="nba-model-loader", daemon=True
    )
    helper.start()
    send.close()
    try:
        if not receive.poll(LOAD_TIMEOUT_SECONDS):
            raise NBAError(
                f"loading model version {ref.version} took more than "
                f"{LOAD_TIMEOUT_SECONDS:.0f} s; the version being served stays"
            )
        try:
            ok, payload = receive.recv()
        except EOFError:
            raise NBAError(
                f"the process loading model version {ref.version} ended without it "
                f"(exit code {helper.exitcode}); the version being served stays"
            ) from None
    finally:
        receive.close()
        helper.join(timeout=5)
        if helper.is_alive():
            helper.kill()
            helper.join()
    if not ok:
        raise NBAError(payload)
    loaded: LoadedModel = pickle.loads(payload)
    settle_heap()
    return loaded


def _load_and_send(settings: Settings, ref: ModelRef, send: Connection) -> None:
    """The helper process: load, then send ``(True, pickled model)`` or ``(False, why)``.
    It runs only on CPU time the server leaves idle: on a machine whose cores are all busy
    the reload takes longer, and the answers do not."""
    _yield_cpu()
    from serving.logs import configure_json_logging

    configure_json_logging(settings.log_level)
    logging.captureWarnings(True)
    try:
        loaded = load_champion(settings, ref)
        send.send((True, pickle.dumps(loaded, protocol=pickle.HIGHEST_PROTOCOL)))
    except Exception as exc:  # the server logs it and keeps the version it serves
        send.send((False, f"model version {ref.version} could not be loaded: {exc}"))
    finally:
        send.close()


def _yield_cpu() -> None:
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # Linux
    except (AttributeError, OSError):
        os.nice(19)


def settle_heap() -> None:
    """Keep what is loaded for good (imports, models) out of the garbage collector's full
    passes. With some 400,000 long-lived objects one full pass holds Python's lock for
    about 200 ms, and every request in flight waits; frozen, a pass takes well under a
    millisecond. The young garbage of the load is collected first (a cheap pass)."""
    gc.collect(1)
    gc.freeze()
