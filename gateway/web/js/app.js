/**
 * The app: one token client, a hash router, the header and the token panel. Views live in
 * views/; each gets a context and returns a node, loading its data on its own.
 */

import { createApi, describeError } from "./api.js";
import { clear, h, notice, replace } from "./dom.js";
import { TokenClient } from "./token-client/index.js";
import { authView } from "./views/auth.js";
import { boardView } from "./views/board.js";
import { myProfileView, profileView } from "./views/profile.js";
import { sessionsView } from "./views/sessions.js";
import { mountTokenPanel } from "./views/token-panel.js";

// `?refresh-ahead=N` tries the proactive refresh with another margin (0 turns it off).
const params = new URLSearchParams(location.search);
const refreshAhead = params.has("refresh-ahead") ? Number(params.get("refresh-ahead")) : 60;

const auth = new TokenClient({ refreshAhead });
const api = createApi(auth);

const ROUTES = [
  { pattern: /^\/?$/, view: boardView },
  { pattern: /^\/board$/, view: boardView },
  { pattern: /^\/login$/, view: (ctx) => authView(ctx, "login") },
  { pattern: /^\/signup$/, view: (ctx) => authView(ctx, "signup") },
  { pattern: /^\/me$/, view: myProfileView, signedIn: true },
  { pattern: /^\/profiles\/([^/]+)$/, view: profileView },
  { pattern: /^\/sessions$/, view: sessionsView, signedIn: true },
];

const nav = document.getElementById("nav");
const account = document.getElementById("account");
const notices = document.getElementById("notices");
const main = document.getElementById("view");
const panel = mountTokenPanel(document.getElementById("token-panel"), { auth });

let identity = null; // status and session id: a view is rebuilt when these change, not on refresh
let userId = null;

function currentPath() {
  const raw = location.hash.replace(/^#/, "");
  try {
    return decodeURIComponent(raw) || "/";
  } catch {
    return raw; // a malformed escape: no route matches it, so it shows "Not found"
  }
}

function navigate(path) {
  if (currentPath() === path) render();
  else location.hash = `#${path}`;
}

/** Show a notice above the view until the next navigation. */
function flash(text, kind = "info") {
  replace(notices, notice(text, kind));
}

function renderHeader(state) {
  const path = currentPath();
  const link = (href, label) => h("a", { href: `#${href}`, class: "nav-link",
    "aria-current": path === href || (href === "/board" && path === "/") ? "page" : null }, label);
  clear(nav).append(link("/board", "Board"));
  if (state.status === "signed-in") nav.append(link("/me", "My profile"), link("/sessions", "Sessions"));

  clear(account);
  if (state.status === "signed-in") {
    account.append(
      h("a", { class: "account-name", href: `#/profiles/${encodeURIComponent(state.user.id)}`,
               title: state.user.email }, state.user.name),
      h("button", { type: "button", class: "button button-quiet", onClick: logOut }, "Log out"),
    );
  } else if (state.status === "signed-out") {
    account.append(
      h("a", { href: "#/login", class: "button button-quiet" }, "Log in"),
      h("a", { href: "#/signup", class: "button button-primary" }, "Sign up"),
    );
  } else {
    account.append(h("span", { class: "muted" }, "Restoring session…"));
  }
}

async function logOut() {
  // Move to the board without a hashchange, so the notice the logout shows stays up.
  if (!["/", "/board"].includes(currentPath())) history.pushState(null, "", "#/board");
  try {
    await auth.logout();
  } catch (error) {
    flash(`Logged out here, but the server was not reached: ${error.message}`, "error");
  }
}

function render() {
  const state = auth.getSnapshot();
  renderHeader(state);
  const path = currentPath();
  const route = ROUTES.find((r) => r.pattern.test(path));
  const ctx = { auth, api, state, navigate, flash, panel, params: route ? path.match(route.pattern).slice(1) : [] };
  let view;
  if (state.status === "restoring") {
    view = h("section", { class: "card loading" }, h("p", {}, "Restoring your session…"));
  } else if (!route) {
    view = h("section", { class: "card" }, h("h1", {}, "Not found"), h("p", {}, "There is no page here. "),
      h("a", { href: "#/board" }, "Go to the board"));
  } else if (route.signedIn && state.status !== "signed-in") {
    view = authView({ ...ctx, next: path }, "login");
  } else {
    view = route.view(ctx);
  }
  replace(main, view);
}

auth.subscribe((state) => {
  const next = `${state.status}:${state.sessionId}`;
  if (next === identity) return;
  const wasSignedIn = identity?.startsWith("signed-in");
  identity = next;
  if (state.status === "signed-out" && wasSignedIn && state.reason) flash(state.reason);
  if (state.status === "signed-in" && wasSignedIn && state.user.id !== userId) {
    flash(`You are now logged in as ${state.user.name}: this browser logged in again in another tab.`);
  }
  userId = state.user?.id ?? null;
  render();
});

window.addEventListener("hashchange", () => {
  notices.replaceChildren();
  render();
  main.focus({ preventScroll: true });
});

identity = `${auth.getSnapshot().status}:null`;
render();
auth.restore().catch((error) => flash(`Your session could not be restored: ${describeError(error)}`, "error"));
