/** My sessions: every device logged in to this account; revoke one, or log out everywhere. */

import { describeError } from "../api.js";
import { h, notice, replace, timeElement } from "../dom.js";

/** "Chrome on Linux" from a User-Agent string; the full string stays in the title. */
export function describeDevice(userAgent) {
  if (!userAgent) return "Unknown device";
  const browsers = [[/Edg\//, "Edge"], [/OPR\//, "Opera"], [/Firefox\//, "Firefox"],
                    [/HeadlessChrome\//, "Headless Chrome"], [/Chrome\//, "Chrome"], [/Safari\//, "Safari"],
                    [/curl\//, "curl"], [/python-requests/, "Python requests"]];
  const systems = [[/Android/, "Android"], [/iPhone|iPad/, "iOS"], [/Windows/, "Windows"], [/Mac OS X/, "macOS"],
                   [/CrOS/, "ChromeOS"], [/Linux/, "Linux"]];
  const browser = browsers.find(([re]) => re.test(userAgent))?.[1];
  const system = systems.find(([re]) => re.test(userAgent))?.[1];
  if (browser && system) return `${browser} on ${system}`;
  return browser || system || userAgent.slice(0, 40);
}

export function sessionsView(ctx) {
  const { api, auth } = ctx;
  const list = h("ul", { class: "sessions" });
  const status = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  const everywhere = h("button", { type: "button", class: "button button-danger" }, "Log out everywhere");
  everywhere.addEventListener("click", async () => {
    everywhere.disabled = true;
    try {
      await auth.logoutEverywhere(); // the app shows the notice and the login page
    } catch (error) {
      everywhere.disabled = false;
      replace(status, notice(describeError(error), "error"));
    }
  });

  function row(session) {
    const error = h("div", { class: "session-error" });
    const revoke = session.current ? null
      : h("button", { type: "button", class: "button button-danger-quiet" }, "Revoke");
    revoke?.addEventListener("click", async () => {
      revoke.disabled = true;
      try {
        await api.sessions.revoke(session.id);
        item.remove();
      } catch (err) {
        revoke.disabled = false;
        replace(error, notice(describeError(err), "error"));
      }
    });
    const item = h("li", { class: `card session${session.current ? " current" : ""}`, dataset: { sessionId: session.id } },
      h("div", { class: "session-main" },
        h("p", { class: "session-device", title: session.user_agent },
          describeDevice(session.user_agent),
          session.current ? h("span", { class: "badge" }, "this device") : null),
        h("p", { class: "muted small" }, "Logged in ", timeElement(session.created_at),
          " · last active ", timeElement(session.last_used_at))),
      h("div", { class: "session-actions" }, revoke),
      error);
    return item;
  }

  api.sessions.list().then(({ sessions }) => {
    // This device first, then the most recently active.
    sessions.sort((a, b) => (b.current - a.current) || b.last_used_at.localeCompare(a.last_used_at));
    replace(list, ...sessions.map(row));
    status.replaceChildren();
  }).catch((error) => replace(status, notice(describeError(error), "error")));

  return h("section", { class: "sessions-page" },
    h("h1", {}, "My sessions"),
    h("p", { class: "muted" }, "Each login on a browser or device is a session with its own refresh token. ",
      "Revoking one ends it at its next refresh, within one access-token lifetime."),
    status,
    list,
    h("div", { class: "card danger-zone" },
      h("div", {}, h("h2", {}, "Log out everywhere"),
        h("p", { class: "muted" }, "Ends every session of this account, this one included.")),
      everywhere));
}
