"""The app's pages in a real browser: accounts, the board, profiles, safe rendering, screenshots."""

from __future__ import annotations

import requests
from playwright.sync_api import expect

from tests.web.browser_app import PASSWORD, api_session, new_email, sign_up_by_api


def test_sign_up_log_out_and_log_in_through_the_forms(app):
    email = new_email("ada")
    page = app.page
    page.locator("#account").get_by_role("link", name="Sign up").click()
    form = page.locator("form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_label("Name").fill("Ada")
    form.get_by_role("button", name="Sign up").click()
    app.expect_signed_in("Ada")
    app.expect_log("logged in as Ada")

    page.get_by_role("button", name="Log out", exact=True).click()
    app.expect_signed_out()
    expect(page.locator("#notices")).to_contain_text("You logged out.")

    app.log_in(email)
    app.expect_signed_in("Ada")
    expect(page.get_by_role("heading", name="Board")).to_be_visible()


def test_api_errors_are_readable(stack, app):
    page = app.page
    page.goto("/#/signup")
    form = page.locator("form")
    form.get_by_label("Email").fill("not-an-address")
    form.get_by_label("Password").fill("short")
    form.get_by_label("Name").fill("X")
    form.get_by_role("button", name="Sign up").click()
    expect(form.get_by_role("alert")).to_contain_text("The request has invalid fields.")
    expect(form.locator(".field-error").filter(has_text="8")).to_be_visible()  # password length, by its field
    expect(form.get_by_label("Password")).to_have_attribute("aria-invalid", "")

    email = sign_up_by_api(stack.url, "Taken")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Sign up").click()
    expect(form.get_by_role("alert")).to_have_text("An account with this email already exists.")

    page.goto("/#/login")
    form = page.locator("form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill("wrong password")
    form.get_by_role("button", name="Log in").click()
    expect(form.get_by_role("alert")).to_have_text("The email or password is wrong.")
    app.expect_signed_out()


def test_pages_for_signed_in_people_ask_to_log_in_first(stack, app):
    email = sign_up_by_api(stack.url, "Joan")
    app.page.goto("/#/sessions")
    expect(app.page.get_by_text("Log in to see this page.")).to_be_visible()
    form = app.page.locator("form")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Password").fill(PASSWORD)
    form.get_by_role("button", name="Log in").click()
    expect(app.page.get_by_role("heading", name="My sessions")).to_be_visible()


def test_write_edit_and_delete_own_posts_but_not_others(stack, app):
    other = api_session(stack.url, sign_up_by_api(stack.url, "Other"))
    other.post(
        f"{stack.url}/api/boards", json={"title": "Someone else's post", "content": "Hands off."}
    ).raise_for_status()
    app.log_in(sign_up_by_api(stack.url, "Mine"))

    post = app.write_post("First draft", "Typo here.")
    post.get_by_role("button", name="Edit").click()
    post.get_by_label("Title").fill("Final version")
    post.get_by_label("Content").fill("Fixed.")
    post.get_by_role("button", name="Save").click()
    edited = post
    expect(edited.locator(".post-title")).to_have_text("Final version")
    expect(edited.locator(".post-content")).to_have_text("Fixed.")

    edited.get_by_role("button", name="Edit").click()
    edited.get_by_label("Title").fill("")
    edited.get_by_role("button", name="Save").click()
    expect(edited.get_by_role("alert")).to_contain_text("The request has invalid fields.")
    edited.get_by_role("button", name="Cancel").click()
    expect(edited.locator(".post-title")).to_have_text("Final version")

    edited.get_by_role("button", name="Delete").click()
    edited.get_by_role("button", name="Yes, delete").click()
    expect(edited).to_have_count(0)

    app.page.reload()
    theirs = app.posts.filter(has_text="Someone else's post")
    expect(theirs).to_have_count(1)
    expect(theirs.get_by_role("button")).to_have_count(0)
    expect(app.posts.filter(has_text="Final version")).to_have_count(0)


def test_the_board_is_newest_first_and_pages_with_more(stack, app):
    pager = api_session(stack.url, sign_up_by_api(stack.url, "Pager"))
    titles = [f"paged post {i:02}" for i in range(13)]
    for title in titles:
        pager.post(f"{stack.url}/api/boards", json={"title": title, "content": "."}).raise_for_status()
    total, params = 0, {"limit": 100}
    while True:
        page = requests.get(f"{stack.url}/api/boards", params=params).json()
        total += len(page["items"])
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]

    app.page.reload()
    expect(app.posts).to_have_count(10)
    more = app.page.get_by_role("button", name="More")
    while more.is_visible():
        shown = app.posts.count()
        more.click()
        expect(app.posts).not_to_have_count(shown)
    expect(app.posts).to_have_count(total)
    headings = app.page.locator("article.post h2").all_inner_texts()
    mine = [h for h in headings if h.startswith("paged post")]
    assert mine == list(reversed(titles))


def test_my_profile_and_other_peoples(stack, app):
    author = api_session(stack.url, sign_up_by_api(stack.url, "Author"))
    author.patch(f"{stack.url}/api/profiles/me", json={"bio": "I write posts."}).raise_for_status()
    author.post(f"{stack.url}/api/boards", json={"title": "By the author", "content": "Hello."}).raise_for_status()

    app.log_in(sign_up_by_api(stack.url, "Reader"))
    app.page.get_by_role("link", name="My profile").click()
    expect(app.page.locator(".profile-name")).to_have_text("Reader")
    form = app.page.locator("form")
    form.get_by_label("Name").fill("Reader Renamed")
    form.get_by_label("Bio").fill("Line one\nLine two")
    form.get_by_role("button", name="Save").click()
    expect(app.page.get_by_text("Saved.")).to_be_visible()
    expect(app.page.locator(".profile-name")).to_have_text("Reader Renamed")
    expect(app.page.locator(".profile-bio")).to_have_text("Line one\nLine two")

    form.get_by_label("Name").fill("")
    form.get_by_role("button", name="Save").click()
    expect(form.get_by_role("alert")).to_contain_text("The request has invalid fields.")
    expect(form.get_by_label("Name")).to_have_attribute("aria-invalid", "")
    expect(app.page.locator(".profile-name")).to_have_text("Reader Renamed")

    app.page.get_by_role("link", name="Board").click()
    app.posts.filter(has_text="By the author").get_by_role("link", name="Author").click()
    expect(app.page.locator(".profile-name")).to_have_text("Author")
    expect(app.page.locator(".profile-bio")).to_have_text("I write posts.")

    app.page.goto("/#/profiles/nobody-has-this-id")
    expect(app.page.get_by_role("alert")).to_contain_text("no profile yet")


def test_user_content_is_shown_as_text_and_runs_nothing(stack, app, traffic):
    hostile = "<img src=x onerror=alert(1)>"
    app.log_in(sign_up_by_api(stack.url, "<b>Mallory</b>"))
    post = app.write_post("<script>alert(2)</script>", hostile)

    expect(post.locator(".post-content")).to_have_text(hostile)
    expect(post.locator(".post-title")).to_have_text("<script>alert(2)</script>")
    expect(post.locator(".author")).to_have_text("<b>Mallory</b>")
    expect(post.locator("img, script, b")).to_have_count(0)
    app.page.reload()
    expect(app.posts.filter(has_text=hostile).locator("img")).to_have_count(0)
    app.page.wait_for_timeout(300)
    # No dialog opened (the `browsing` fixture fails the test on any), and nothing fetched `x`.
    fetched = app.page.evaluate("performance.getEntriesByType('resource').map((entry) => entry.name)")
    assert not [url for url in fetched if url.endswith("/x")]


def test_screenshots_of_the_board_and_the_token_panel(stack, app, artifacts):
    email = sign_up_by_api(stack.url, "Margaret")
    app.log_in(email)
    app.write_post(
        "Silent refresh, visibly",
        "Watch the panel: the countdown runs out, the next call refreshes "
        "the token with the cookie and retries, and nobody is asked to log in again.",
    )
    app.wait_until_expired()
    app.write_post("Written after the token expired", "This post needed a refresh first; see the log on the right.")
    app.page.evaluate("window.scrollTo(0, 0)")
    app.page.mouse.move(0, 0)
    app.page.screenshot(path=artifacts / "board.png")
    app.panel.screenshot(path=artifacts / "token-panel.png")
    assert (artifacts / "board.png").stat().st_size > 10_000
    assert (artifacts / "token-panel.png").stat().st_size > 5_000
