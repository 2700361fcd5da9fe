"""DPoP in real Chromium against the real stack: the session is bound to a non-extractable key kept
in IndexedDB; reloads, a second tab, expiry and silent refresh keep working with it; logout deletes
it; the refresh cookie copied into another browser profile is worthless there."""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, Request

from tests.support.stack import Stack
from tests.web.browser_app import REFRESH_PATH, WebApp, sign_up_by_api, thumbprint
from tests.web.conftest import Browsing

# What IndexedDB holds for the web app's client (name "silent-auth"): the key pair, or null.
STORED_KEY = """
async () => {
  const db = await new Promise((resolve, reject) => {
    const request = indexedDB.open("silent-auth-dpop", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("keys");
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
  const pair = await new Promise((resolve, reject) => {
    const request = db.transaction("keys").objectStore("keys").get("current");
    request.onsuccess = () => resolve(request.result ?? null);
    request.onerror = () => reject(request.error);
  });
  db.close();
  if (!pair) return null;
  const describe = (key) => ({ isCryptoKey: key instanceof CryptoKey, extractable: key.extractable,
                               type: key.type, algorithm: key.algorithm.name, curve: key.algorithm.namedCurve });
  let exported = "refused";
  try { await crypto.subtle.exportKey("jwk", pair.privateKey); exported = "exported"; } catch { /* as it must */ }
  return { privateKey: describe(pair.privateKey), publicKey: describe(pair.publicKey), exported };
}
"""


def proofs_of(page: Page) -> dict[str, list[str | None]]:
    """The DPoP header of every auth request the page sends, by path, as they go."""
    seen: dict[str, list[str | None]] = {}

    def record(request: Request) -> None:
        path = request.url.split("://", 1)[1].split("/", 1)[1]
        if path.startswith("api/auth/"):
            seen.setdefault("/" + path.split("?")[0], []).append(request.headers.get("dpop"))

    page.on("request", record)
    return seen


def test_bound_session_lives_through_reload_second_tab_expiry_and_logout(
    stack: Stack, app: WebApp, new_tab: Callable[[], WebApp]
) -> None:
    proofs = proofs_of(app.page)
    app.log_in(sign_up_by_api(stack.url, "Dora"))
    key = thumbprint(app)
    # The page's attempt to restore a session when it first loaded, before any login, has no key to
    # prove (and needs none); every refresh from the login on must carry a proof.
    first = len(proofs.get(REFRESH_PATH, []))

    def refresh_proofs() -> list[str | None]:
        return proofs.get(REFRESH_PATH, [])[first:]

    assert proofs["/api/auth/login"] and all(proofs["/api/auth/login"])

    stored = app.page.evaluate(STORED_KEY)
    assert stored["privateKey"] == {
        "isCryptoKey": True,
        "extractable": False,
        "type": "private",
        "algorithm": "ECDSA",
        "curve": "P-256",
    }
    assert stored["publicKey"]["isCryptoKey"] and stored["publicKey"]["type"] == "public"
    assert stored["exported"] == "refused"

    app.page.reload()
    app.expect_signed_in("Dora")
    assert thumbprint(app) == key
    assert refresh_proofs() and all(refresh_proofs())

    second = new_tab().open()
    second.expect_signed_in("Dora")
    assert thumbprint(second) == key

    app.wait_until_expired()
    refreshes = len(refresh_proofs())
    app.fire_burst()
    app.expect_log(re.compile(r"^10 calls at once → 10 ✓"))
    assert len(refresh_proofs()) > refreshes
    assert all(refresh_proofs())
    assert len(set(refresh_proofs())) == len(refresh_proofs()), "a new proof for every request"

    # The logout request is recorded as it leaves; the page may show the signed-out state first.
    with app.page.expect_request(lambda request: request.url.endswith("/api/auth/logout")):
        app.page.get_by_role("button", name="Log out", exact=True).click()
    app.expect_signed_out()
    second.expect_signed_out()
    assert proofs["/api/auth/logout"] and all(proofs["/api/auth/logout"])
    app.page.wait_for_function(
        "() => new Promise((done) => { const r = indexedDB.open('silent-auth-dpop', 1);"
        " r.onsuccess = () => { const g = r.result.transaction('keys').objectStore('keys').get('current');"
        " g.onsuccess = () => { r.result.close(); done(g.result === undefined); }; }; })"
    )
    assert app.page.evaluate(STORED_KEY) is None


def test_a_copied_refresh_cookie_is_worthless_in_another_browser(stack: Stack, browsing: Browsing, app: WebApp) -> None:
    app.log_in(sign_up_by_api(stack.url, "Eve's victim"))
    thumbprint(app)
    stolen = [cookie for cookie in app.page.context.cookies() if cookie["name"] == "refresh_token"]
    assert stolen

    thief_context = browsing.new_context()
    thief_context.add_cookies(stolen)  # type: ignore[arg-type]
    thief = browsing.new_tab(thief_context)
    statuses: list[int] = []
    thief.page.on("response", lambda r: statuses.append(r.status) if r.url.endswith(REFRESH_PATH) else None)
    thief.open()
    thief.expect_signed_out()
    assert statuses == [401]

    # The owner's session is untouched by the thief's attempt.
    app.page.get_by_role("button", name="Refresh now").click()
    app.expect_log("refresh requested → refreshed silently")
    app.expect_signed_in("Eve's victim")
