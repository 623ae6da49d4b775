"""The hot list routes (`GET /v1/orders`, `/fills`, `/positions`, `/pnl`) at the framework's floor (issue 16 item 4).

FastAPI documents each route and stays its definition: the endpoint's parameters, its dependencies and their query
parameters. A request whose every query parameter FastAPI reads is given at most once and passes that parameter's
own validator (the very ``ModelField`` FastAPI validates it with) is answered by calling the route's dependencies —
the caller's token and role, the paging — and the endpoint directly, without FastAPI's per-request dependency
solving (a fifth of the server's Python time on `GET /v1/positions`, profiled: docs/PERFORMANCE.md). Any other
request (a parameter given twice, a value its validator refuses) goes through FastAPI as before, so its answer is
FastAPI's, word for word; a missing or bad token is refused by the same dependency either way.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.deps import CurrentPrincipal, bearer, dependency

_DEPENDENCIES = ("principal", "services", "paging")  # what the floor resolves itself; the rest are query filters


def _fields(dependant: Dependant) -> dict[str, Any]:
    """The query parameters of ``dependant`` by name, refusing what the floor would not read as FastAPI does."""
    fields = {field.name: field for field in dependant.query_params}
    for name, field in fields.items():
        if field.alias != name or field.field_info.validation_alias is not None:
            raise TypeError(f"query parameter {name} has an alias; {__name__} reads parameters by name")
    return fields


class ListRoute(APIRoute):
    """A list route: plainly valid requests at the floor, every other one through FastAPI."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        framework = super().get_route_handler()
        endpoint = self.endpoint
        dependencies = {dependant.name: dependant for dependant in self.dependant.dependencies}
        if tuple(dependencies) != _DEPENDENCIES or self.dependant.header_params or self.dependant.path_params:
            raise TypeError(
                f"{endpoint.__name__} depends on {tuple(dependencies)}; {__name__} resolves {_DEPENDENCIES}"
            )
        principal_of = dependency(CurrentPrincipal)
        if [d.call for d in dependencies["principal"].dependencies] != [principal_of]:
            raise TypeError(f"{endpoint.__name__}'s principal is not checked on api.deps' current principal")
        allowed, paging_of = dependencies["principal"].call, dependencies["paging"].call
        assert allowed is not None and paging_of is not None
        filters, paging = _fields(self.dependant), _fields(dependencies["paging"])

        def read(request: Request, fields: dict[str, Any]) -> dict[str, Any] | None:
            """Each field's value as FastAPI's validator gives it, or None when FastAPI must judge the request."""
            values: dict[str, Any] = {}
            for name, field in fields.items():
                given = request.query_params.getlist(name)
                if not given:
                    if field.field_info.is_required():
                        return None
                    values[name] = field.get_default()
                    continue
                if len(given) > 1:
                    return None
                value, errors = field.validate(given[0], loc=("query", name))
                if errors:
                    return None
                values[name] = value
            return values

        async def floor(request: Request) -> Response:
            filtered, paged = read(request, filters), read(request, paging)
            if filtered is None or paged is None:
                return await framework(request)
            services = request.app.state.services
            principal = await allowed(await principal_of(services, await bearer(request)))
            response: Response = await endpoint(
                principal=principal, services=services, paging=await paging_of(**paged), **filtered
            )
            return response

        return floor
