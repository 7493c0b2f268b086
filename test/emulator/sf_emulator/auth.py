"""OAuth 2.0: the token endpoint's four flows, JWT checks, userinfo/identity, revoke, the token registry and the
Authorization check of every API call (docs/bulk-api-2.md §3).

Route table ROUTES: unversioned paths under /services/oauth2 and /id."""

import base64
import hashlib
import hmac
import json
import os
import urllib.parse

from . import common
from .common import ORG_ID, USER_ID, ApiError, OAuthError, Response, Route


# ----------------------------------------------------------------------------------------------------------
# Tokens (state kept in the Emulator: emu.tokens, emu.refresh_tokens)
# ----------------------------------------------------------------------------------------------------------
def reset_tokens(emu):
    """Forget every issued token; the default org's long-lived access and refresh tokens are valid again."""
    org, u = emu.org, emu.org["user"]
    emu.tokens = {org["access_token"]: {"username": u["username"], "client_id": org["client_id"],
                                        "expires": None, "revoked": False}}
    emu.refresh_tokens = {org["refresh_token"]: {"username": u["username"], "client_id": org["client_id"],
                                                 "revoked": False}}
    emu.calls_until_expiry = None


def new_token(emu, username, client_id):
    secret = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=").replace("-", ".").replace("_", "")
    tok = "%s!AR%s" % (ORG_ID[:15], secret)
    ttl = emu.config["token_ttl_seconds"]
    with emu.lock:
        emu.tokens[tok] = {"username": username, "client_id": client_id,
                            "expires": (common.now() + ttl) if ttl else None, "revoked": False}
    return tok


def check_token(emu, tok):
    with emu.lock:
        s = emu.tokens.get(tok)
        if not s or s["revoked"] or (s["expires"] is not None and common.now() >= s["expires"]):
            return None
        return s


def expire_tokens(emu, token=None, refresh_token=None):
    n = 0
    with emu.lock:
        if token is None and refresh_token is None:
            for s in emu.tokens.values():
                s["revoked"] = True
                n += 1
        if token is not None and token in emu.tokens:
            emu.tokens[token]["revoked"] = True
            n += 1
        if refresh_token is not None and refresh_token in emu.refresh_tokens:
            emu.refresh_tokens[refresh_token]["revoked"] = True
            n += 1
    return n


def authenticate(req):
    """The session of the call's bearer token; 401 (REST core) otherwise (§3.6)."""
    emu = req.emu
    h = req.headers.get("Authorization")
    if not h:
        raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid", core=True)
    parts = h.split(None, 1)
    if len(parts) != 2 or parts[0].lower() not in ("bearer", "oauth"):
        raise ApiError(401, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE", core=True)
    s = check_token(emu, parts[1].strip())
    if s is None:
        raise ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid", core=True)
    return s


# ----------------------------------------------------------------------------------------------------------
# Token endpoint
# ----------------------------------------------------------------------------------------------------------
def oauth_token(req, m=None, _=None):
    emu, body = req.emu, req.body
    ct = (req.headers.get("Content-Type") or "").lower()
    if "application/x-www-form-urlencoded" not in ct:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    try:
        params = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
    except UnicodeDecodeError:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    basic_id = basic_secret = None
    h = req.headers.get("Authorization") or ""
    if h.lower().startswith("basic "):
        try:
            basic_id, basic_secret = base64.b64decode(h[6:].strip()).decode("utf-8").split(":", 1)
            basic_id = urllib.parse.unquote(basic_id)
            basic_secret = urllib.parse.unquote(basic_secret)
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "invalid client credentials")
    client_id = params.get("client_id") or basic_id
    client_secret = params.get("client_secret") or basic_secret
    grant = params.get("grant_type")
    org = emu.org
    apps = {org["client_id"]: org["client_secret"]}

    def check_client(require_secret=True):
        if client_id not in apps:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if require_secret and client_secret != apps[client_id]:
            raise OAuthError("invalid_client", "invalid client credentials")
    users = {org["user"]["username"].lower(): org["user"]}
    full = True
    if grant == "password":
        check_client()
        u = users.get((params.get("username") or "").lower())
        if not u or params.get("password") != u["password"] + u.get("security_token", ""):
            if not (u and params.get("password") == u["password"] and not u.get("require_security_token")):
                raise OAuthError("invalid_grant", "authentication failure")
        username = u["username"]
    elif grant == "client_credentials":
        host = (req.headers.get("Host") or "").lower()
        allowed = emu.config["my_domain_hosts"]
        if allowed is None:
            bu = urllib.parse.urlsplit(emu.base_url)
            allowed = [bu.netloc.lower(), "localhost:%d" % bu.port, "127.0.0.1:%d" % bu.port]
        if host not in [a.lower() for a in allowed]:
            raise OAuthError("unsupported_grant_type", "grant type not supported")
        check_client()
        username = org["user"]["username"]
    elif grant == "refresh_token":
        check_client()
        rt = emu.refresh_tokens.get(params.get("refresh_token") or "")
        if not rt or rt["revoked"] or rt["client_id"] != client_id:
            raise OAuthError("invalid_grant", "expired access/refresh token")
        username = rt["username"]
    elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        username, client_id = check_jwt(emu, params.get("assertion") or "", users)
        full = emu.config["jwt_full_response"]
    else:
        raise OAuthError("unsupported_grant_type", "grant type not supported")
    tok = new_token(emu, username, client_id)
    base = emu.base_url
    ident = "%s/id/%s/%s" % (base, ORG_ID, USER_ID)
    issued = str(int(common.now() * 1000))
    out = {"access_token": tok}
    if full:
        sig = base64.b64encode(hmac.new(apps[client_id].encode(), (ident + issued).encode(),
                                        hashlib.sha256).digest()).decode()
        out["signature"] = sig
    out.update({"scope": "api",
                "instance_url": base, "id": ident, "token_type": "Bearer"})
    if full:
        out["issued_at"] = issued
    return req.json(out)


def check_jwt(emu, assertion, users):
    """The username and client id of a valid JWT bearer assertion (docs/bulk-api-2.md §3.3)."""
    parts = assertion.split(".")
    if len(parts) != 3:
        raise OAuthError("invalid_grant", "invalid assertion")

    def b64(s):
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
    try:
        header = json.loads(b64(parts[0]))
        claims = json.loads(b64(parts[1]))
        sig = b64(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise OAuthError("invalid_grant", "invalid assertion")
    if not isinstance(header, dict) or header.get("alg") != "RS256" or not isinstance(claims, dict):
        raise OAuthError("invalid_grant", "invalid assertion")
    iss = claims.get("iss")
    if iss != emu.org["client_id"]:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if emu.pubkey is None:
        raise OAuthError("invalid_grant", "invalid assertion")
    try:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.exceptions import InvalidSignature
        emu.pubkey.verify(sig, (parts[0] + "." + parts[1]).encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError, TypeError):
        raise OAuthError("invalid_grant", "invalid assertion")
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    ok_auds = {a.rstrip("/") for a in emu.org["jwt"]["audiences"]} | {emu.base_url.rstrip("/")}
    if not any(isinstance(a, str) and a.rstrip("/") in ok_auds for a in auds):
        raise OAuthError("invalid_grant", "audience is invalid")
    exp = claims.get("exp")
    try:
        exp = float(exp)
    except (TypeError, ValueError):
        raise OAuthError("invalid_grant", "invalid assertion")
    t = common.now()
    if exp < t - 5 or exp > t + emu.config["jwt_max_exp_seconds"] + 5:
        raise OAuthError("invalid_grant", "expired authorization code" if exp < t else "invalid assertion")
    u = users.get(str(claims.get("sub") or "").lower())
    if not u or not u.get("jwt_preauthorized", True):
        raise OAuthError("invalid_grant", "user hasn't approved this consumer")
    return u["username"], iss


def userinfo_body(emu):
    u = emu.org["user"]
    base = emu.base_url
    v = "%d.0" % emu.config["max_api_version"]
    return {"sub": "%s/id/%s/%s" % (base, ORG_ID, USER_ID), "user_id": USER_ID, "organization_id": ORG_ID,
            "preferred_username": u["username"], "nickname": u["username"].split("@")[0],
            "name": "%s %s" % (u["first_name"], u["last_name"]), "email": u["email"], "email_verified": True,
            "given_name": u["first_name"], "family_name": u["last_name"], "zoneinfo": "GMT",
            "active": True, "user_type": "STANDARD", "language": "en_US", "locale": "en_US",
            "utcOffset": 0, "is_app_installed": True,
            "urls": {"enterprise": base + "/services/Soap/c/{version}/" + ORG_ID[:15],
                     "partner": base + "/services/Soap/u/{version}/" + ORG_ID[:15],
                     "rest": base + "/services/data/v{version}/",
                     "sobjects": base + "/services/data/v{version}/sobjects/",
                     "query": base + "/services/data/v{version}/query/",
                     "profile": base + "/" + USER_ID,
                     "custom_domain": base},
            "organization": {"id": ORG_ID, "name": emu.org["org_name"]}, "api_version": v}


def revoke(req, m, _):
    params = urllib.parse.parse_qs(req.body.decode("utf-8", "replace") or req.query)
    tok = (params.get("token") or [""])[0]
    expire_tokens(req.emu, token=tok, refresh_token=tok)
    return Response(200, b"")


def userinfo(req, m, _):
    authenticate(req)
    return req.json(userinfo_body(req.emu))


_ANY = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ROUTES = [
    Route(r"/services/oauth2/token", {"POST": oauth_token}),
    Route(r"/services/oauth2/revoke", {m: revoke for m in _ANY}),
    Route(r"/services/oauth2/userinfo|/id/00D[0-9A-Za-z]{15}/005[0-9A-Za-z]{15}", {m: userinfo for m in _ANY}),
]
