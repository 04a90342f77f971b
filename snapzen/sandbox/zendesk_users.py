"""The fake Zendesk's users endpoints, what an Art. 17 erasure needs: find a person by email,
list their tickets, soft-delete them (``active`` false, gone from search, still shown by id
in show_many) and then delete them permanently. Each endpoint is a function of the account
(``Zendesk``) and the request, called by the app under the account's lock."""

from __future__ import annotations

from werkzeug.wrappers import Request

from snapzen.sandbox.responses import JsonDict, invalid, listing, not_found
from snapzen.sandbox.zendesk import Zendesk, ids_arg


def _live(zd: Zendesk, user_id: int) -> JsonDict:
    user = zd.users.get(user_id)
    if user is None or not user["active"]:
        raise not_found()
    return user


def user_show(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    url = f"{zd.api}/users/{user_id}.json"
    return {"user": {**_live(zd, user_id), "url": url, "verified": True, "suspended": False}}


def users_me(zd: Zendesk, request: Request) -> JsonDict:
    return user_show(zd, request, zd.api_user_id)  # the app checked the caller's credentials


def users_search(zd: Zendesk, request: Request) -> JsonDict:
    # Real Search Users also matches names, notes and partial values; exact email is the
    # subset snapzen relies on (it filters for the exact address itself anyway).
    query = (request.args.get("query") or "").strip()
    if not query:
        raise invalid("query is required")
    return listing("users", zd.search_users(query))


def users_show_many(zd: Zendesk, request: Request) -> JsonDict:
    # Live and soft-deleted users alike, as Zendesk's show_many; unknown ids are left out.
    return {"users": [dict(zd.users[i]) for i in ids_arg(request) if i in zd.users]}


def user_tickets_requested(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    return _tickets(zd, user_id, "requester_id")


def user_tickets_ccd(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    return _tickets(zd, user_id, "collaborator_ids")


def _tickets(zd: Zendesk, user_id: int, key: str) -> JsonDict:
    """Live and archived tickets naming the user, one page (soft-deleted ones left out)."""
    _live(zd, user_id)
    named = []
    for record in zd.tickets.values():
        value = record.data.get(key)
        if record.deleted_at is None and user_id in (value if isinstance(value, list) else [value]):
            named.append(record.shown())
    return listing("tickets", named)


def user_delete(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    user = _live(zd, user_id)
    user["active"] = False
    if user["email"] is not None:
        zd.user_by_email.pop(user["email"].lower(), None)
    return {"user": dict(user)}


def deleted_user_delete(zd: Zendesk, request: Request, user_id: int) -> JsonDict:
    """Permanent deletion: a 404 unless the user was soft-deleted first."""
    if zd.users.get(user_id, {"active": True})["active"]:
        raise not_found()
    del zd.users[user_id]
    zd.purged_users.add(user_id)
    return {"deleted_user": {"id": user_id, "name": "Permanently Deleted User", "email": None}}
