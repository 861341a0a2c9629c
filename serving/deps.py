"""FastAPI dependencies as ``Annotated`` aliases: the app state, a database session, the caller."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from doudi.io import World
from doudi.policy import PolicyConfig
from doudi.settings import Settings
from serving.auth import Principal, authenticate
from serving.champion import ServingModel
from serving.errors import NotReady
from serving.metrics import Metrics


@dataclass
class AppState:
    """Everything the routes need, built once in the app's lifespan."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    policy: PolicyConfig
    metrics: Metrics
    reference: World | None = None
    model: ServingModel | None = None
    model_error: str | None = None
    id_key: bytes | None = None


# Dependencies that neither block nor touch the database are ``async``: FastAPI runs a plain ``def`` in
# its thread pool, a hop there and back (~0.3 ms each way measured for the scoring call) on every request.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.doudi
    return state


State = Annotated[AppState, Depends(get_state)]


def get_session(state: State) -> Iterator[Session]:
    with state.sessions() as session:
        yield session


DbSession = Annotated[Session, Depends(get_session)]


AuthorizationHeader = Annotated[str | None, Header(description="Bearer <token>")]


def get_principal(state: State, authorization: AuthorizationHeader = None) -> Principal:
    return authenticate(state.engine, authorization)


Caller = Annotated[Principal, Depends(get_principal)]


def pinned_model(state: AppState) -> ServingModel:
    """The pinned model, or ``NotReady`` while it is not loaded."""
    if state.model is None:
        raise NotReady(state.model_error or "the model is not loaded yet")
    return state.model


async def get_model(state: State) -> ServingModel:
    return pinned_model(state)


PinnedModel = Annotated[ServingModel, Depends(get_model)]
