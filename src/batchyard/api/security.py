"""batchyard's security endpoints, under ``/batchyard/v1``: credentials, policies, the
policy simulator, secrets and the audit log. JSON in camelCase, errors in AWS's shape.

Each is authorized like an AWS API call, with the IAM action AWS has for the same thing:

    POST   /credentials                      iam:CreateAccessKey       user ARN
    GET    /credentials[?user=]              iam:ListAccessKeys        user ARN or *
    POST   /credentials/revoke               iam:DeleteAccessKey       user ARN
    GET    /policies[?kind=&owner=]          iam:ListPolicies          *
    PUT    /policies/{kind}/{owner}/{name}   iam:Put{User,Group}Policy user/group ARN
                                             (batchyard:PutAccessKeyPolicy for a key)
    DELETE /policies/{kind}/{owner}/{name}   iam:Delete{User,Group}Policy / ...AccessKeyPolicy
    PUT    /users/{name}/groups              iam:AddUserToGroup        user and group ARNs
    GET    /users                            iam:ListUsers             *
    POST   /policy/simulate                  iam:SimulatePrincipalPolicy user ARN
                                             (iam:SimulateCustomPolicy for a given document)
    GET    /whoami                           none (like sts:GetCallerIdentity)
    GET    /secrets                          secretsmanager:ListSecrets *
    PUT    /secrets/{name}                   secretsmanager:PutSecretValue secret ARN
    DELETE /secrets/{name}                   secretsmanager:DeleteSecret   secret ARN
    GET    /audit?since=&until=&principal=&action=&outcome=&limit=&nextToken=
                                             cloudtrail:LookupEvents   *

A secret's value goes in and never comes out.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from batchyard.api.extensions import PREFIX, camel
from batchyard.api.protocol import error_response
from batchyard.auth.guard import PRINCIPAL, SESSION_COOKIE, Guard
from batchyard.auth.identity import Principal
from batchyard.auth.policy import ANY, Resource, evaluate, parse_policy
from batchyard.auth.targets import Check, Target
from batchyard.errors import BatchyardError, InvalidRequest
from batchyard.service.secrets import store_name

Handler = Callable[[Request, Principal, dict[str, Any]], Any]
_LOGIN = """<!doctype html>
<html><head><meta charset="utf-8"><title>batchyard: log in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto}}
label{{display:block;margin:.8rem 0 .2rem}}input{{width:100%;padding:.4rem}}
.error{{color:#b00020}}button{{margin-top:1rem;padding:.4rem 1.2rem}}</style></head>
<body><h1>batchyard</h1><p>Log in with an access key from
<code>batchyard credentials create</code>.</p><p class="error">{error}</p>
<form method="post" action="/ui/login"><input type="hidden" name="next" value="{next}">
<label for="k">Access key id</label><input id="k" name="access_key_id" autocomplete="username">
<label for="s">Secret access key</label>
<input id="s" name="secret_access_key" type="password" autocomplete="current-password">
<button type="submit">Log in</button></form></body></html>
"""


def _next(values: Any) -> str:
    """Where to go after logging in: a path on this server only (no open redirect)."""
    target = str(values.get("next") or "/ui")
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/ui"
    return target


def _int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidRequest(f"{name} must be a number (epoch milliseconds)") from None


class SecurityApi:
    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.ids = guard.identities
        self.secrets = guard.secrets
        self.audit = guard.audit
        self.t = guard.targets

    def routes(self) -> list[Route]:
        def ep(fn: Handler, mutating: bool) -> Callable[[Request], Awaitable[Response]]:
            async def handle(request: Request) -> Response:
                principal = request.scope.get(PRINCIPAL) or self._local()
                try:
                    body: dict[str, Any] = {}
                    if request.method in ("POST", "PUT"):
                        raw = await request.body()
                        if raw.strip():
                            body = orjson.loads(raw)
                        if not isinstance(body, dict):
                            raise InvalidRequest("the request body must be a JSON object")
                    result = await anyio.to_thread.run_sync(fn, request, principal, body)
                except orjson.JSONDecodeError as e:
                    return error_response(InvalidRequest(f"the body is not valid JSON: {e}"))
                except BatchyardError as e:
                    return error_response(e)
                return Response(orjson.dumps(camel(result)), media_type="application/json")

            return handle

        p = PREFIX
        return [
            Route(f"{p}/whoami", ep(self.whoami, False), methods=["GET"]),
            Route(f"{p}/credentials", ep(self.create_key, True), methods=["POST"]),
            Route(f"{p}/credentials", ep(self.list_keys, False), methods=["GET"]),
            Route(f"{p}/credentials/revoke", ep(self.revoke, True), methods=["POST"]),
            Route(f"{p}/users", ep(self.users, False), methods=["GET"]),
            Route(f"{p}/users/{{name}}/groups", ep(self.set_groups, True), methods=["PUT"]),
            Route(f"{p}/policies", ep(self.list_policies, False), methods=["GET"]),
            Route(
                f"{p}/policies/{{kind}}/{{owner}}/{{name}}",
                ep(self.put_policy, True),
                methods=["PUT"],
            ),
            Route(
                f"{p}/policies/{{kind}}/{{owner}}/{{name}}",
                ep(self.delete_policy, True),
                methods=["DELETE"],
            ),
            Route(f"{p}/policy/simulate", ep(self.simulate, False), methods=["POST"]),
            Route(f"{p}/secrets", ep(self.list_secrets, False), methods=["GET"]),
            Route(f"{p}/secrets/{{name:path}}", ep(self.put_secret, True), methods=["PUT"]),
            Route(f"{p}/secrets/{{name:path}}", ep(self.delete_secret, True), methods=["DELETE"]),
            Route(f"{p}/audit", ep(self.lookup, False), methods=["GET"]),
            Route("/ui/login", self.login_page, methods=["GET"]),
            Route("/ui/login", self.login, methods=["POST"]),
            Route("/ui/logout", self.logout, methods=["GET", "POST"]),
        ]

    # ---- dashboard sessions ---------------------------------------------------------------

    async def login_page(self, request: Request) -> Response:
        return HTMLResponse(_LOGIN.format(next=html.escape(_next(request.query_params)), error=""))

    async def login(self, request: Request) -> Response:
        """The login form (or JSON): an access key and its secret -> a session cookie
        (HttpOnly, SameSite=Strict, Secure over TLS) for the dashboard and its data calls."""
        raw = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                form = orjson.loads(raw)
            except orjson.JSONDecodeError:
                form = {}
        else:
            form = {k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        if not isinstance(form, dict):
            form = {}
        key_id = str(form.get("access_key_id") or form.get("accessKeyId") or "")
        secret = str(form.get("secret_access_key") or form.get("secretAccessKey") or "")
        source = request.client.host if request.client else ""
        target = _next(form)
        try:
            cookie, seconds = await anyio.to_thread.run_sync(
                self.guard.login, key_id, secret, source
            )
        except BatchyardError as e:
            if "json" in request.headers.get("content-type", ""):
                return error_response(e)
            page = _LOGIN.format(next=html.escape(target), error=html.escape(e.message))
            return HTMLResponse(page, status_code=e.status)
        if "json" in request.headers.get("content-type", ""):
            response: Response = Response(
                orjson.dumps({"loggedIn": True, "expiresIn": seconds}),
                media_type="application/json",
            )
        else:
            response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            cookie,
            max_age=seconds,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    async def logout(self, request: Request) -> Response:
        response = RedirectResponse("/ui/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @staticmethod
    def _local() -> Principal:
        from batchyard.auth.guard import unrestricted

        return unrestricted()

    def _do(
        self,
        principal: Principal,
        action: str,
        resources: list[Resource],
        work: Callable[[], Any],
        mutating: bool = True,
    ) -> Any:
        """Authorize, do, and (for a change, or a refusal) write the audit record."""
        target = Target([Check(action, resources)], mutating=mutating)
        try:
            self.guard.authorize(principal, target)
            result = work()
        except BatchyardError as e:
            if mutating or e.status == 403:
                self.guard.record(principal, action, target.arns, e)
            raise
        if mutating:
            self.guard.record(principal, action, target.arns)
        return result

    # ---- who am I -------------------------------------------------------------------------

    def whoami(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        return {
            "user": principal.name,
            "arn": principal.arn(self.guard.arns.account_id),
            "access_key_id": principal.access_key_id,
            "groups": list(principal.groups),
            "authentication": "required" if self.guard.required else "off",
        }

    # ---- credentials ----------------------------------------------------------------------

    def create_key(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        name = body.get("name") or body.get("user")
        if not isinstance(name, str):
            raise InvalidRequest("name (the user the key belongs to) is required")
        policy = body.get("policy")
        if policy is not None and not isinstance(policy, str | dict):
            raise InvalidRequest("policy must be a policy document (a JSON object or its text)")
        groups = body.get("groups") or []
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise InvalidRequest("groups must be a list of names")

        def work() -> Any:
            key_id, secret = self.ids.create_key(
                name,
                policy,
                body.get("policy_name") or body.get("policyName") or "default",
                groups,
                body.get("description"),
            )
            return {"access_key_id": key_id, "secret_access_key": secret, "user": name}

        return self._do(principal, "iam:CreateAccessKey", [Resource(self.t.user_arn(name))], work)

    def list_keys(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        user = request.query_params.get("user")
        res = [Resource(self.t.user_arn(user))] if user else [ANY]
        keys = self._do(
            principal, "iam:ListAccessKeys", res, lambda: self.ids.list_keys(user), False
        )
        return {"access_keys": keys}

    def revoke(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        key_id, user = body.get("access_key_id") or body.get("accessKeyId"), body.get("user")
        owner = user
        if key_id is not None:
            found = self.ids.lookup(key_id)
            owner = found.user if found is not None else None
        res = [Resource(self.t.user_arn(owner))] if owner else [ANY]
        revoked = self._do(
            principal, "iam:DeleteAccessKey", res, lambda: self.ids.revoke(key_id, user)
        )
        return {"revoked": revoked}

    def users(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        found = self._do(principal, "iam:ListUsers", [ANY], self.ids.users, False)
        return {"users": [{"name": u["name"], "groups": u["groups"]} for u in found]}

    def set_groups(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        name = request.path_params["name"]
        groups = body.get("groups")
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise InvalidRequest("groups must be a list of group names")
        res = [Resource(self.t.user_arn(name))] + [Resource(self.t.group_arn(g)) for g in groups]
        self._do(principal, "iam:AddUserToGroup", res, lambda: self.ids.set_groups(name, groups))
        return {"user": name, "groups": sorted(set(groups))}

    # ---- policies -------------------------------------------------------------------------

    def _owner(self, kind: str, owner: str) -> tuple[str, Resource]:
        if kind == "user":
            return "User", Resource(self.t.user_arn(owner))
        if kind == "group":
            return "Group", Resource(self.t.group_arn(owner))
        if kind == "key":
            found = self.ids.lookup(owner)
            user = found.user if found is not None else owner
            return "AccessKey", Resource(self.t.user_arn(user))
        raise InvalidRequest(f"a policy attaches to a user, a group or a key, not {kind!r}")

    def list_policies(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        q = request.query_params
        found = self._do(
            principal,
            "iam:ListPolicies",
            [ANY],
            lambda: self.ids.list_policies(q.get("kind"), q.get("owner")),
            False,
        )
        return {
            "policies": [
                {
                    "kind": p["owner_kind"],
                    "owner": p["owner"],
                    "name": p["name"],
                    "document": orjson.loads(p["document"]),
                    "updated_at": p["updated_at"],
                }
                for p in found
            ]
        }

    def put_policy(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        kind, owner, name = (request.path_params[k] for k in ("kind", "owner", "name"))
        what, res = self._owner(kind, owner)
        document = body.get("document", body)
        replaced = self._do(
            principal,
            f"iam:Put{what}Policy" if what != "AccessKey" else "batchyard:PutAccessKeyPolicy",
            [res],
            lambda: self.ids.put_policy(kind, owner, name, document),
        )
        return {"kind": kind, "owner": owner, "name": name, "replaced": replaced}

    def delete_policy(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        kind, owner, name = (request.path_params[k] for k in ("kind", "owner", "name"))
        what, res = self._owner(kind, owner)
        self._do(
            principal,
            f"iam:Delete{what}Policy" if what != "AccessKey" else "batchyard:DeleteAccessKeyPolicy",
            [res],
            lambda: self.ids.delete_policy(kind, owner, name),
        )
        return {"deleted": True}

    def simulate(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        """IAM's policy simulator: may this key (user, or policy) do these actions on these
        resources? Answers each pair with the decision and the statement that made it."""
        actions = body.get("actions") or ([body["action"]] if body.get("action") else [])
        resources = body.get("resources") or ([body["resource"]] if body.get("resource") else ["*"])
        context = body.get("context") or {}
        if not actions or not all(isinstance(a, str) for a in actions):
            raise InvalidRequest('actions (e.g. ["batch:SubmitJob"]) are required')
        if not all(isinstance(r, str) for r in resources) or not isinstance(context, dict):
            raise InvalidRequest("resources must be ARNs and context an object of key: value")
        if body.get("policy") is not None:
            doc = body["policy"]
            policies = (
                parse_policy(doc if isinstance(doc, str) else orjson.dumps(doc).decode(), "given"),
            )
            subject = Principal("simulated", policies=policies)
            self._do(principal, "iam:SimulateCustomPolicy", [ANY], lambda: None, False)
        else:
            key_id = body.get("access_key_id") or body.get("accessKeyId")
            user = body.get("user")
            if key_id:
                subject = self.ids.principal_of_key(key_id)
            elif user:
                subject = self.ids.principal_of_user(user)
            else:
                raise InvalidRequest("name the accessKeyId or the user to simulate, or a policy")
            res = [Resource(self.t.user_arn(subject.name))]
            self._do(principal, "iam:SimulatePrincipalPolicy", res, lambda: None, False)
        ctx = self.guard.context(subject, {k: v for k, v in context.items()})
        results = []
        for action in actions:
            for arn in resources:
                aliases = tuple(self._aliases(arn))
                d = evaluate(subject.policies, action, [Resource(arn, aliases)], ctx)
                results.append(
                    {
                        "action": action,
                        "resource": arn,
                        "decision": d.kind,
                        "allowed": d.allowed,
                        "matched_statements": [
                            {"policy": s.policy, "statement": s.index, "sid": s.sid}
                            for s in d.statements
                        ],
                        "explanation": d.explain(subject.arn(self.guard.arns.account_id)),
                    }
                )
        return {"principal": subject.name, "results": results}

    def _aliases(self, arn: str) -> list[str]:
        """A job ARN is also its queue's (as in real requests)."""
        if ":job/" not in arn:
            return []
        found = self.t.jobs([arn.rsplit(":job/", 1)[1]])
        return list(found[0].aliases) if found else []

    # ---- secrets --------------------------------------------------------------------------

    def list_secrets(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        found = self._do(principal, "secretsmanager:ListSecrets", [ANY], self.secrets.list, False)
        return {"secrets": found}

    def put_secret(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        name = store_name(request.path_params["name"])  # a name, or an ARN naming one
        value = body.get("value")
        if not isinstance(value, str):
            raise InvalidRequest("value (a string) is required")
        description = body.get("description")
        version = self._do(
            principal,
            "secretsmanager:PutSecretValue",
            [Resource(self.t.secret_arn(name))],
            lambda: self.secrets.put(name, value, description),
        )
        return {"name": name, "version": version, "arn": self.t.secret_arn(name)}

    def delete_secret(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        name = store_name(request.path_params["name"])
        self._do(
            principal,
            "secretsmanager:DeleteSecret",
            [Resource(self.t.secret_arn(name))],
            lambda: self.secrets.delete(name),
        )
        return {"name": name, "deleted": True}

    # ---- the audit log --------------------------------------------------------------------

    def lookup(self, request: Request, principal: Principal, body: dict[str, Any]) -> Any:
        q = request.query_params

        def work() -> Any:
            return self.audit.query(
                since=_int(q.get("since"), "since"),
                until=_int(q.get("until"), "until"),
                principal=q.get("principal") or None,
                action=q.get("action") or None,
                outcome=q.get("outcome") or None,
                limit=_int(q.get("limit"), "limit"),
                next_token=q.get("nextToken") or None,
            )

        rows, token = self._do(principal, "cloudtrail:LookupEvents", [ANY], work, False)
        return {"events": rows, "next_token": token}
