"""Item 1: OAuth token endpoint (password, client_credentials, JWT bearer, refresh_token), error bodies, expiry."""

import base64
import hashlib
import hmac
import time
import unittest
import urllib.parse

from emu import ORG, TOKEN, EmuTestCase, make_jwt

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
U = ORG["user"]


class OAuth(EmuTestCase):
    def token(self, params, headers=None):
        h = dict(FORM)
        h.update(headers or {})
        return self.request("POST", "/services/oauth2/token", urllib.parse.urlencode(params), h, token=None)

    def password(self, **over):
        p = {"grant_type": "password", "client_id": ORG["client_id"], "client_secret": ORG["client_secret"],
             "username": U["username"], "password": U["password"]}
        p.update(over)
        return self.token(p)

    def assertOAuthError(self, r, error, desc):
        self.assertEqual(r.status, 400, r.text)
        self.assertEqual(r.json(), {"error": error, "error_description": desc})
        self.assertEqual(r.headers["Content-Type"], "application/json;charset=UTF-8")

    def assertSuccessShape(self, body, full=True):
        expected = {"access_token", "instance_url", "id", "token_type", "scope"}
        if full:
            expected |= {"issued_at", "signature"}
        self.assertEqual(set(body), expected)
        self.assertEqual(body["instance_url"], self.emu.url)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertRegex(body["access_token"], r"^00D[0-9A-Za-z]{12}!")
        self.assertRegex(body["id"], r"/id/00D[0-9A-Za-z]{15}/005[0-9A-Za-z]{15}$")
        if full:
            self.assertIsInstance(body["issued_at"], str)
            self.assertAlmostEqual(int(body["issued_at"]) / 1000.0, time.time(), delta=60)
            sig = base64.b64encode(hmac.new(ORG["client_secret"].encode(),
                                            (body["id"] + body["issued_at"]).encode(), hashlib.sha256).digest())
            self.assertEqual(body["signature"], sig.decode())

    def works(self, tok):
        return self.api("GET", "/limits", token=tok).status == 200

    # password -----------------------------------------------------------------------------------------------
    def test_password_flow(self):
        r = self.password()
        self.assertEqual(r.status, 200, r.text)
        body = r.json()
        self.assertSuccessShape(body)
        self.assertNotIn("refresh_token", body)
        self.assertNotIn("expires_in", body)
        self.assertTrue(self.works(body["access_token"]))
        # password + security token is accepted too
        self.assertEqual(self.password(password=U["password"] + U["security_token"]).status, 200)

    def test_password_flow_errors(self):
        self.assertOAuthError(self.password(password="wrong"), "invalid_grant", "authentication failure")
        self.assertOAuthError(self.password(username="nobody@x"), "invalid_grant", "authentication failure")
        self.assertOAuthError(self.password(client_id="3MVGunknown"), "invalid_client_id",
                              "client identifier invalid")
        self.assertOAuthError(self.password(client_secret="nope"), "invalid_client", "invalid client credentials")
        self.assertOAuthError(self.password(grant_type="authorization_code"), "unsupported_grant_type",
                              "grant type not supported")
        r = self.request("POST", "/services/oauth2/token", '{"grant_type":"password"}',
                         {"Content-Type": "application/json"}, token=None)
        self.assertOAuthError(r, "unsupported_grant_type", "grant type not supported")

    # client credentials -------------------------------------------------------------------------------------
    def test_client_credentials_body_and_basic(self):
        r = self.token({"grant_type": "client_credentials", "client_id": ORG["client_id"],
                        "client_secret": ORG["client_secret"]})
        self.assertEqual(r.status, 200, r.text)
        self.assertSuccessShape(r.json())
        basic = base64.b64encode(("%s:%s" % (ORG["client_id"], ORG["client_secret"])).encode()).decode()
        r = self.token({"grant_type": "client_credentials"}, {"Authorization": "Basic " + basic})
        self.assertEqual(r.status, 200, r.text)
        self.assertTrue(self.works(r.json()["access_token"]))
        bad = base64.b64encode(("%s:%s" % (ORG["client_id"], "x")).encode()).decode()
        self.assertOAuthError(self.token({"grant_type": "client_credentials"}, {"Authorization": "Basic " + bad}),
                              "invalid_client", "invalid client credentials")

    def test_client_credentials_only_on_my_domain_host(self):
        r = self.token({"grant_type": "client_credentials", "client_id": ORG["client_id"],
                        "client_secret": ORG["client_secret"]}, {"Host": "login.salesforce.com"})
        self.assertOAuthError(r, "unsupported_grant_type", "grant type not supported")
        # the password flow is fine on the login host
        p = {"grant_type": "password", "client_id": ORG["client_id"], "client_secret": ORG["client_secret"],
             "username": U["username"], "password": U["password"]}
        self.assertEqual(self.token(p, {"Host": "login.salesforce.com"}).status, 200)

    # JWT ----------------------------------------------------------------------------------------------------
    def jwt(self, **over):
        claims = {"iss": ORG["client_id"], "sub": U["username"], "aud": "https://login.salesforce.com",
                  "exp": int(time.time()) + 180}
        claims.update(over)
        claims = {k: v for k, v in claims.items() if v is not None}
        return self.token({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                           "assertion": make_jwt(claims)})

    def test_jwt_flow_and_response_shape(self):
        for aud in ("https://login.salesforce.com", "https://test.salesforce.com", self.emu.url):
            r = self.jwt(aud=aud)
            self.assertEqual(r.status, 200, r.text)
            self.assertSuccessShape(r.json(), full=False)
            self.assertTrue(self.works(r.json()["access_token"]))
        r = self.jwt(exp=str(int(time.time()) + 120))  # exp as a string is tolerated
        self.assertEqual(r.status, 200, r.text)
        self.config(jwt_full_response=True)
        self.assertSuccessShape(self.jwt().json(), full=True)

    def test_jwt_typ_header_tolerated(self):
        claims = {"iss": ORG["client_id"], "sub": U["username"], "aud": "https://login.salesforce.com",
                  "exp": int(time.time()) + 60}
        a = make_jwt(claims, header={"alg": "RS256", "typ": "JWT"})
        r = self.token({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": a})
        self.assertEqual(r.status, 200, r.text)

    def test_jwt_errors(self):
        self.assertOAuthError(self.jwt(aud="https://acme.my.salesforce.com"), "invalid_grant", "audience is invalid")
        self.assertOAuthError(self.jwt(iss="3MVGother"), "invalid_client_id", "client identifier invalid")
        self.assertOAuthError(self.jwt(sub="stranger@x"), "invalid_grant", "user hasn't approved this consumer")
        self.assertOAuthError(self.jwt(exp=int(time.time()) - 600), "invalid_grant", "expired authorization code")
        self.assertOAuthError(self.jwt(exp=int(time.time()) + 86400), "invalid_grant", "invalid assertion")
        self.assertOAuthError(self.jwt(exp=None), "invalid_grant", "invalid assertion")
        # signature by another key
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        import tempfile
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with tempfile.NamedTemporaryFile(suffix=".pem", delete=False) as fh:
            fh.write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
        claims = {"iss": ORG["client_id"], "sub": U["username"], "aud": "https://login.salesforce.com",
                  "exp": int(time.time()) + 60}
        a = make_jwt(claims, key_path=fh.name)
        self.assertOAuthError(self.token({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                          "assertion": a}), "invalid_grant", "invalid assertion")
        # tampered claims
        good = make_jwt(claims).split(".")
        evil = make_jwt(dict(claims, sub="other")).split(".")
        a = ".".join([good[0], evil[1], good[2]])
        self.assertOAuthError(self.token({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                          "assertion": a}), "invalid_grant", "invalid assertion")
        # alg none
        a = make_jwt(claims, header={"alg": "none"})
        self.assertOAuthError(self.token({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                          "assertion": a}), "invalid_grant", "invalid assertion")
        self.assertOAuthError(self.token({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                          "assertion": "garbage"}), "invalid_grant", "invalid assertion")

    # refresh token ------------------------------------------------------------------------------------------
    def test_refresh_token_flow(self):
        p = {"grant_type": "refresh_token", "refresh_token": ORG["refresh_token"], "client_id": ORG["client_id"],
             "client_secret": ORG["client_secret"]}
        r = self.token(p)
        self.assertEqual(r.status, 200, r.text)
        self.assertSuccessShape(r.json())
        self.assertNotIn("refresh_token", r.json())
        basic = base64.b64encode(("%s:%s" % (ORG["client_id"], ORG["client_secret"])).encode()).decode()
        r = self.token({"grant_type": "refresh_token", "refresh_token": ORG["refresh_token"]},
                       {"Authorization": "Basic " + basic})
        self.assertEqual(r.status, 200, r.text)
        self.assertOAuthError(self.token(dict(p, refresh_token="5Aepbogus")), "invalid_grant",
                              "expired access/refresh token")
        self.admin("POST", "/tokens/expire", {"refresh_token": ORG["refresh_token"]})
        self.assertOAuthError(self.token(p), "invalid_grant", "expired access/refresh token")

    def test_admin_issued_tokens(self):
        t = self.admin("POST", "/tokens", {"ttl_seconds": 3600})
        self.assertTrue(self.works(t["access_token"]))
        r = self.token({"grant_type": "refresh_token", "refresh_token": t["refresh_token"],
                        "client_id": ORG["client_id"], "client_secret": ORG["client_secret"]})
        self.assertEqual(r.status, 200)

    # expiry -------------------------------------------------------------------------------------------------
    def test_token_ttl_expiry_gives_invalid_session_id(self):
        self.config(token_ttl_seconds=1)
        tok = self.password().json()["access_token"]
        self.assertTrue(self.works(tok))
        time.sleep(1.2)
        r = self.api("GET", "/limits", token=tok)
        self.assertApiError(r, 401, "INVALID_SESSION_ID", "Session expired or invalid")
        self.assertEqual(r.text, '[{"message":"Session expired or invalid","errorCode":"INVALID_SESSION_ID"}]')
        # every API route answers 401
        for m, p in (("GET", "/jobs/ingest"), ("POST", "/jobs/query"), ("GET", "/sobjects"),
                     ("PUT", "/jobs/ingest/750Em0000000001IAA/batches")):
            self.assertEqual(self.api(m, p, token=tok).status, 401)

    def test_clock_advance_expires_tokens(self):
        tok = self.password().json()["access_token"]
        self.admin("POST", "/clock", {"advance_seconds": 7201})
        self.assertEqual(self.api("GET", "/limits", token=tok).status, 401)
        self.assertTrue(self.works(TOKEN))  # the default token is long-lived

    def test_expire_all_now_one_and_after_n_calls(self):
        a = self.password().json()["access_token"]
        b = self.password().json()["access_token"]
        self.admin("POST", "/tokens/expire", {"access_token": a})
        self.assertFalse(self.works(a))
        self.assertTrue(self.works(b))
        self.admin("POST", "/tokens/expire", {})
        self.assertFalse(self.works(b))
        self.assertFalse(self.works(TOKEN))
        self.admin("POST", "/reset")
        self.admin("POST", "/tokens/expire", {"after_calls": 3})
        self.assertEqual([self.works(TOKEN) for _ in range(4)], [True, True, True, False])
        # a fresh token is the cure
        self.assertTrue(self.works(self.password().json()["access_token"]))

    def test_missing_or_malformed_authorization(self):
        r = self.api("GET", "/limits", token=None)
        self.assertApiError(r, 401, "INVALID_SESSION_ID", "Session expired or invalid")
        r = self.api("GET", "/limits", token=None, headers={"Authorization": "Basic abc"})
        self.assertApiError(r, 401, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE")
        r = self.api("GET", "/limits", token=None, headers={"Authorization": "Bearer"})
        self.assertApiError(r, 401, "INVALID_AUTH_HEADER", "INVALID_HEADER_TYPE")
        r = self.api("GET", "/limits", token="00Dbogus!x")
        self.assertApiError(r, 401, "INVALID_SESSION_ID")
        self.assertEqual(self.api("GET", "/limits", token=None,
                                  headers={"Authorization": "OAuth " + TOKEN}).status, 200)

    def test_userinfo_and_revoke(self):
        r = self.request("GET", "/services/oauth2/userinfo")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json()["preferred_username"], U["username"])
        self.assertEqual(r.json()["organization_id"], ORG["org_id"])
        tok = self.password().json()["access_token"]
        self.request("POST", "/services/oauth2/revoke", urllib.parse.urlencode({"token": tok}), FORM, token=None)
        self.assertFalse(self.works(tok))


if __name__ == "__main__":
    unittest.main()
