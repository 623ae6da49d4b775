"""Probes for orchestrators: alive (the process answers) and ready (its dependencies answer)."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel

from api.deps import ServicesDep

router = APIRouter(tags=["health"])


class Alive(BaseModel):
    status: Literal["alive"] = "alive"


class CheckOut(BaseModel):
    status: Literal["ok", "failed", "skipped"]
    detail: str


class Ready(BaseModel):
    status: Literal["ready", "not ready"]
    checks: dict[str, CheckOut]


@router.get("/healthz", response_model=Alive, summary="Liveness: the process answers")
async def healthz() -> Alive:
    """200 whenever the process serves requests; it checks nothing else, so a restart would not help otherwise."""
    return Alive()


@router.get(
    "/readyz",
    response_model=Ready,
    responses={503: {"description": "A dependency does not answer; `checks` says which and why", "model": Ready}},
    summary="Readiness: Kafka, the schema registry and Postgres answer; projections are fresh",
)
async def readyz(services: ServicesDep, response: Response) -> Ready:
    """200 when no check failed (a skipped check says why it does not apply), else 503."""
    results = await services.readiness.check()
    ready = all(r.status != "failed" for r in results)
    if not ready:
        response.status_code = 503
    return Ready(
        status="ready" if ready else "not ready",
        checks={r.name: CheckOut(status=r.status, detail=r.detail) for r in results},
    )
