"""The token client in a real browser: silent refresh, single flight, tabs, session guard, storage."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.web.browser_app import REFRESH_PATH, Traffic, sign_up_by_api, wait_until

JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def test_expired_token_is_refreshed_silently_and_the_post_retried(stack, app, traffic):
    email = sign_up_by_api(stack.url, "Grace")
    app.log_in(email)
    app.wait_until_expired()
    traffic.reset()

    post = app.write_post("Written after expiry", "No login prompt, one refresh.")

    expect(post).to_contain_text("No login prompt, one refresh.")
    app.expect_signed_in("Grace")
    expect(app.page.get_by_label("Password")).to_have_count(0)
    assert [e.status for e in traffic.calls("POST", "/api/boards")] == [401, 201]
    assert [e.status for e in traffic.refreshes()] == [200]
    app.expect_log("access token expired → refreshed silently → retried POST /api/boards ✓")
    expect(app.page.locator("#token-countdown")).to_have_attribute("data-state", "valid")


def test_reload_keeps_the_session_and_no_token_is_readable(stack, app, context):
    email = sign_up_by_api(stack.url, "Linus")
    with app.page.expect_response(lambda r: r.url.endswith("/api/auth/login")) as login:
        app.log_in(email)
    access_token = login.value.json()["access_token"]

    app.page.reload()
    app.expect_signed_in("Linus")
    app.expect_log("session restored from the refresh cookie as Linus")

    stored = app.page.evaluate("""async () => ({
        local: Object.entries(localStorage),
        session: Object.entries(sessionStorage),
        cookie: document.cookie,
        databases: indexedDB.databases ? (await indexedDB.databases()).map((d) => d.name) : [],
    })""")
    # The one database is the DPoP key's: a non-extractable key pair, no token (tests/web/test_dpop.py).
    assert stored == {"local": [], "session": [], "cookie": "", "databases": ["silent-auth-dpop"]}
    html = app.page.content()
    assert access_token not in html and not JWT.search(html)

    cookies = {c["name"]: c for c in context.cookies()}
    assert set(cookies) == {"refresh_token", "login_device"}
    refresh, device = cookies["refresh_token"], cookies["login_device"]
    assert refresh["httpOnly"] and refresh["secure"] and refresh["sameSite"] == "Strict"
    assert refresh["path"] == "/api/auth"
    assert device["httpOnly"] and device["secure"] and device["sameSite"] == "Strict"
    assert device["path"] == "/api/auth/login"


def test_calls_failing_together_share_one_refresh(stack, app, traffic):
    email = sign_up_by_api(stack.url, "Barbara")
    app.log_in(email)
    app.wait_until_expired()
    traffic.reset()

    app.fire_burst()

    app.expect_log("10 calls at once → 10 ✓ · 1 refresh by this tab")
    calls = traffic.calls("GET", "/api/profiles/me")
    assert sorted(e.status for e in calls) == [200] * 10 + [401] * 10
    assert [e.status for e in traffic.refreshes()] == [200]
    # Calls that failed while the refresh ran joined it; later ones found the new token already there.
    retried = [(text, count) for text, count in app.log_entries() if text.startswith("access token expired")]
    assert sum(count for _, count in retried) == 10
    assert [text for text, _ in retried].count(
        "access token expired → refreshed silently → retried GET /api/profiles/me ✓"
    ) == 1, retried
    assert all(
        re.fullmatch(
            r"access token expired → (refreshed silently|joined the refresh in flight|already "
            r"refreshed) → retried GET /api/profiles/me ✓",
            text,
        )
        for text, _ in retried
    ), retried


def test_two_tabs_past_expiry_acting_at_once_never_burn_each_others_refresh_token(stack, app, new_tab, traffic):
    email = sign_up_by_api(stack.url, "Edsger")
    first = app.log_in(email)
    second = new_tab().open()
    second.expect_signed_in("Edsger")  # restored in its own tab, and the token was shared back
    first.expect_log("another tab refreshed → token shared")
    first.wait_until_expired()
    second.wait_until_expired()
    traffic.reset()

    # Both tabs click at the same instant, by their shared clock.
    start = first.page.evaluate("Date.now() + 300")
    for tab in (first, second):
        tab.page.evaluate("at => setTimeout(() => document.getElementById('burst').click(), at - Date.now())", start)

    for tab in (first, second):
        tab.expect_log(re.compile(r"^10 calls at once → 10 ✓"))
        tab.expect_signed_in("Edsger")
    refreshes = traffic.refreshes()
    assert traffic.max_refreshes_in_flight == 1, "the Web Lock lets one tab refresh at a time"
    assert 1 <= len(refreshes) <= 2 and all(e.status == 200 for e in refreshes)
    texts = first.log_texts() + second.log_texts()
    if len(refreshes) == 1:
        assert any("another tab refreshed" in text for text in texts), texts
    assert '"event": "refresh_token_reuse"' not in stack.log()


def test_a_tab_that_waited_for_the_lock_uses_the_token_another_tab_got(stack, app, new_tab, traffic):
    """Deterministic version of the race: the second tab queues on the lock while the first refreshes."""
    email = sign_up_by_api(stack.url, "Tony")
    first = app.log_in(email)
    second = new_tab().open()
    second.expect_signed_in("Tony")
    first.wait_until_expired()
    second.wait_until_expired()
    traffic.reset()
    held = []
    # Playwright needs a Python function here (it inspects the handler): a bound builtin will not do.
    first.page.route(f"**{REFRESH_PATH}", lambda route: held.append(route))  # noqa: PLW0108

    first.fire_burst()
    expect(first.page.locator("#token-status")).to_have_text("refreshing…")
    second.fire_burst()
    wait_until(lambda: held, first.page, "the first tab's refresh is held")
    wait_until(
        lambda: second.page.evaluate("navigator.locks.query().then((s) => s.pending.length)"),
        second.page,
        "the second tab queues on the lock",
    )
    held[0].continue_()

    first.expect_log("10 calls at once → 10 ✓ · 1 refresh by this tab")
    second.expect_log("10 calls at once → 10 ✓ · 0 refreshes by this tab")
    second.expect_log("access token expired → another tab refreshed → retried GET /api/profiles/me ✓")
    assert [e.status for e in traffic.refreshes()] == [200]
    assert '"event": "refresh_token_reuse"' not in stack.log()


def test_logging_out_in_one_tab_logs_out_the_other(stack, app, new_tab):
    email = sign_up_by_api(stack.url, "Radia")
    first = app.log_in(email)
    second = new_tab().open()
    second.expect_signed_in("Radia")

    first.page.get_by_role("button", name="Log out", exact=True).click()

    first.expect_signed_out()
    second.expect_signed_out()
    expect(second.page.locator("#notices")).to_contain_text("You were logged out in another tab.")
    second.expect_log("another tab logged out")
    second.page.reload()
    second.expect_signed_out()  # the cookie is gone too: nothing to restore


def test_logging_in_in_one_tab_logs_in_the_others(stack, app, new_tab):
    first_user, second_user = sign_up_by_api(stack.url, "Ida"), sign_up_by_api(stack.url, "Jean")
    first = app.log_in(first_user)
    second = new_tab().open()
    second.page.get_by_role("button", name="Log out", exact=True).click()
    first.expect_signed_out()

    second.log_in(second_user)

    first.expect_signed_in("Jean")
    first.expect_log("another tab logged in as Jean")
    first.page.reload()
    first.expect_signed_in("Jean")


def test_a_revoked_session_is_logged_out_at_its_next_call(stack, browsing, app):
    """Another device revokes this session: the next call's refresh is rejected → logged out."""
    email = sign_up_by_api(stack.url, "Frances")
    laptop = app.log_in(email)
    phone = browsing.new_tab(browsing.new_context()).open().log_in(email)

    laptop.page.goto("/#/sessions")
    sessions = laptop.page.locator("li.session")
    expect(sessions).to_have_count(2)
    expect(sessions.filter(has_text="this device")).to_have_count(1)
    sessions.filter(has_not_text="this device").get_by_role("button", name="Revoke").click()
    expect(sessions).to_have_count(1)

    # The auth service checks the session on every call: token_revoked → logged out, no refresh.
    phone.page.goto("/#/sessions")
    phone.expect_signed_out()
    phone.expect_log("access token revoked for GET /api/auth/sessions → logged out")
    expect(phone.page.locator("#notices")).to_contain_text("Your session has ended; log in again.")
    expect(phone.page.get_by_role("button", name="Log in")).to_be_visible()  # the login form, readable
    laptop.expect_signed_in("Frances")


def test_a_session_revoked_elsewhere_is_refused_by_profile_and_the_tab_logs_out_without_refreshing(
    stack, browsing, app, traffic
):
    """The revocation feed reaches the profile service: its token_revoked ends the tab's session."""
    email = sign_up_by_api(stack.url, "Hedy")
    laptop = app.log_in(email)
    phone_context = browsing.new_context()
    phone_traffic = Traffic().attach(phone_context)
    phone = browsing.new_tab(phone_context).open().log_in(email)

    laptop.page.goto("/#/sessions")
    sessions = laptop.page.locator("li.session")
    expect(sessions).to_have_count(2)
    sessions.filter(has_not_text="this device").get_by_role("button", name="Revoke").click()
    expect(sessions).to_have_count(1)
    phone_traffic.reset()

    phone.page.goto("/#/me")
    phone.expect_signed_out()
    phone.expect_log("access token revoked for GET /api/profiles/me → logged out")
    expect(phone.page.locator("#notices")).to_contain_text("Your session has ended; log in again.")
    assert [e.status for e in phone_traffic.calls("GET", "/api/profiles/me")] == [401]
    assert phone_traffic.refreshes() == [], "a revoked session is not refreshed"
    laptop.expect_signed_in("Hedy")


def test_log_out_everywhere_ends_every_device(stack, browsing, app):
    email = sign_up_by_api(stack.url, "Ken")
    laptop = app.log_in(email)
    phone = browsing.new_tab(browsing.new_context()).open().log_in(email)
    phone.page.goto("/#/sessions")
    expect(phone.page.locator("li.session")).to_have_count(2)

    laptop.page.goto("/#/sessions")
    laptop.page.get_by_role("button", name="Log out everywhere").click()
    laptop.expect_signed_out()
    expect(laptop.page.locator("#notices")).to_contain_text("You logged out everywhere.")

    phone.page.get_by_role("link", name="Board").click()
    phone.page.get_by_role("link", name="Sessions").click()  # auth checks the session: it has ended
    phone.expect_signed_out()
    phone.expect_log("access token revoked for GET /api/auth/sessions → logged out")  # no refresh tried


def test_refresh_ahead_of_expiry_when_configured(stack, browsing, context, traffic):
    tab = browsing.new_tab(context).open("/?refresh-ahead=1#/board")
    email = sign_up_by_api(stack.url, "Alan")
    tab.log_in(email)
    traffic.reset()

    tab.expect_log("refreshing ahead of expiry → refreshed silently")
    assert len(traffic.refreshes()) == 1
    expect(tab.page.locator("#token-countdown")).to_have_attribute("data-state", "valid")
    assert not [e for e in traffic.exchanges if e.status == 401]


def test_a_refresh_answer_after_logout_is_dropped(stack, app, traffic):
    """Session guard: log out while a refresh is on its way; its token is never written back."""
    email = sign_up_by_api(stack.url, "Hedy")
    app.log_in(email)
    traffic.reset()
    released = []

    def hold_refresh(route):
        released.append(route)

    app.page.route(f"**{REFRESH_PATH}", hold_refresh)
    app.page.get_by_role("button", name="Refresh now").click()
    expect(app.page.locator("#token-status")).to_have_text("refreshing…")
    app.page.get_by_role("button", name="Log out", exact=True).click()
    app.expect_signed_out()
    wait_until(lambda: released, app.page, "the refresh is held")
    with app.page.expect_response(lambda r: r.url.endswith("/api/auth/logout")) as logout:
        released[0].continue_()  # the server rotates; the answer arrives after the logout
    assert logout.value.status == 204

    app.expect_log("a refresh answered after its session ended → token dropped")
    app.expect_signed_out()
    app.page.unroute(f"**{REFRESH_PATH}")
    app.page.reload()
    app.expect_signed_out()  # the logout (queued behind the refresh) ended the rotated session too
    assert [e.status for e in traffic.refreshes()] == [200, 401]  # the held one, then the reload's
