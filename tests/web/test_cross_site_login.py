"""Login CSRF in a real browser: a cross-site page that auto-submits a text/plain form to login.

Before the fix this logged the victim's browser into the attacker's account (200 and a
Set-Cookie). The attacker's page is served at an origin of its own by Playwright's router, so
Chromium sends exactly what it would send from a foreign site.
"""

from __future__ import annotations

import json
import uuid

import requests

PASSWORD = "correct horse battery"
ATTACKER_ORIGIN = "http://attacker.test"


def _attack_page(gateway: str, email: str) -> str:
    # The field name carries the JSON; the browser adds '=' and the value, which closes it.
    name = json.dumps({"email": email, "password": PASSWORD, "x": ""})[:-2]
    return f"""<!doctype html><body>
<form id=f method=POST enctype=text/plain action="{gateway}/api/auth/login">
<input type=hidden name='{name}' value='"}}'>
</form><script>document.getElementById('f').submit()</script></body>"""


def test_a_cross_site_form_cannot_log_the_browser_into_another_account(stack, context, base_url):
    email = f"attacker-{uuid.uuid4().hex[:8]}@example.com"
    assert (
        requests.post(
            f"{stack.url}/api/auth/signup", json={"email": email, "password": PASSWORD, "name": "Mallory"}
        ).status_code
        == 201
    )
    context.route(
        f"{ATTACKER_ORIGIN}/**",
        lambda route: route.fulfill(status=200, content_type="text/html", body=_attack_page(base_url, email)),
    )
    page = context.new_page()
    with page.expect_response(f"{base_url}/api/auth/login") as answer:
        page.goto(f"{ATTACKER_ORIGIN}/win-a-prize")
    response = answer.value
    assert response.request.headers["content-type"].startswith("text/plain")  # the attack really ran
    assert response.status == 403
    assert json.loads(response.text())["code"] == "csrf_rejected"
    assert [c["name"] for c in context.cookies(base_url)] == []  # no refresh_token, no login_device
