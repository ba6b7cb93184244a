"""Who may see what on the monitoring pages: authentication by Airflow's login, authorization by
Airflow's auth manager, so a deployment decides with the roles it already has.

- Mailing runs, their totals and the import runs (aggregates, no person named): users who may read
  DAG runs (`is_authorized_dag(GET, RUN)`; Viewer and up in the simple auth manager).
- Contact data — names, addresses, the mails of a run, contact pages, the suppression list, every
  CSV download and an import's rejected rows: users who may also trigger the `contacts_import` DAG
  (`is_authorized_dag(POST, RUN, contacts_import)`: whoever may load contacts may see them; User and
  up in the simple auth manager) AND may open the custom view "Segmail contacts"
  (`is_authorized_custom_view(GET, "Segmail contacts")`), a resource a deployment with a
  role-based auth manager (FAB, Keycloak) grants to the roles that may see personal data.

Airflow's security stack (core_api.security, the auth manager) is imported at request time, so
processes that merely load the plugin (workers, scheduler) do not import it.
"""

from __future__ import annotations

from typing import Annotated

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
from fastapi import Depends, HTTPException, Request

CONTACTS_VIEW = "Segmail contacts"
CONTACTS_DAG_ID = "contacts_import"
CONTACTS_DENIED = (
    "Contact data (names, addresses, the mails of a run) is personal data: it is shown to users who may "
    f"run the {CONTACTS_DAG_ID} DAG and open the custom view “{CONTACTS_VIEW}”. Ask an Airflow admin "
    "for that access; the run totals stay visible to you."
)


async def require_login(request: Request) -> BaseUser:
    """Airflow's own check (as `get_user`): a bearer token, else the UI's `_token` cookie; 401/403 otherwise."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
    from airflow.api_fastapi.core_api.security import resolve_user_from_token

    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return await resolve_user_from_token(authorization[7:].strip())
    return await resolve_user_from_token(request.cookies.get(COOKIE_NAME_JWT_TOKEN))


def may_see_runs(user: BaseUser) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    return get_auth_manager().is_authorized_dag(method="GET", access_entity=DagAccessEntity.RUN, user=user)


def may_see_contacts(user: BaseUser) -> bool:
    from airflow.api_fastapi.app import get_auth_manager

    manager = get_auth_manager()
    return manager.is_authorized_dag(
        method="POST", access_entity=DagAccessEntity.RUN, details=DagDetails(id=CONTACTS_DAG_ID), user=user
    ) and manager.is_authorized_custom_view(method="GET", resource_name=CONTACTS_VIEW, user=user)


def require_runs_access(request: Request, user: Annotated[BaseUser, Depends(require_login)]) -> BaseUser:
    """Every page's check; also notes on the request whether the pages may show contact data."""
    if not may_see_runs(user):
        raise HTTPException(403, "You may not see DAG runs, so not segmail's mailing runs either.")
    request.state.segmail_contacts = may_see_contacts(user)
    return user


def require_contacts_access(
    request: Request, user: Annotated[BaseUser, Depends(require_runs_access)]
) -> BaseUser:
    if not request.state.segmail_contacts:
        raise HTTPException(403, CONTACTS_DENIED)
    return user
