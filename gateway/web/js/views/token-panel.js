/**
 * The token panel: the mechanism made visible. It shows the access token's remaining lifetime
 * counting down and a short log of what the token client did. It never shows the token itself.
 */

import { formatClock, h, replace } from "../dom.js";

const SHOWN_ENTRIES = 12;
const BURST = 10;

function formatRemaining(ms) {
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const whole = Math.floor(seconds);
  const hours = Math.floor(whole / 3600);
  const minutes = Math.floor((whole % 3600) / 60);
  const rest = String(whole % 60).padStart(2, "0");
  return hours ? `${hours} h ${String(minutes).padStart(2, "0")} min` : `${minutes}:${rest} min`;
}

function short(id) {
  return id ? `${id.slice(0, 8)}…` : "—";
}

export function mountTokenPanel(root, { auth }) {
  const badge = h("span", { class: "badge", id: "token-status" });
  const countdown = h("p", { class: "countdown", id: "token-countdown", "aria-live": "off" });
  const caption = h("p", { class: "countdown-caption muted" });
  const meter = h("progress", { class: "lifetime", max: 1, value: 0, "aria-label": "Access token lifetime left" });
  const values = {};
  const details = h("dl", { class: "token-details" },
    ...[["user", "Signed in as"], ["session", "Session"], ["token", "Token id"], ["issued", "Issued"],
        ["expires", "Expires"], ["ahead", "Refresh ahead"], ["refreshes", "Refreshes by this tab"],
        ["binding", "Session key (DPoP)"]]
      .map(([key, label]) => {
        values[key] = h("dd", {}, "—");
        return h("div", { class: "token-detail" }, h("dt", {}, label), values[key]);
      }));
  const burstButton = h("button", { type: "button", class: "button button-quiet", id: "burst",
    title: `Send ${BURST} API calls at once: after expiry they share one refresh` }, `Fire ${BURST} requests`);
  const refreshButton = h("button", { type: "button", class: "button button-quiet", id: "refresh-now" }, "Refresh now");
  const entries = h("ol", { class: "token-log", id: "token-log", "aria-live": "polite" });

  replace(root,
    h("div", { class: "panel-head" }, h("h2", {}, "Access token"), badge),
    countdown, meter, caption,
    details,
    h("div", { class: "panel-actions" }, burstButton, refreshButton),
    h("h3", {}, "What happened"),
    entries,
    h("p", { class: "panel-note muted small" },
      "The access token lives only in this page's memory. The refresh token is an httpOnly cookie: ",
      "no script here can read it."));

  let state = auth.getSnapshot();

  function tick() {
    if (state.status !== "signed-in" || !state.expiresAt) {
      countdown.textContent = state.status === "restoring" ? "…" : "—";
      countdown.dataset.state = "none";
      caption.textContent = state.status === "restoring" ? "Restoring the session" : "No access token";
      meter.value = 0;
      return;
    }
    const lifetime = state.expiresAt - state.issuedAt;
    const remaining = state.expiresAt - Date.now();
    meter.max = lifetime;
    meter.value = Math.max(0, remaining);
    if (remaining > 0) {
      countdown.textContent = formatRemaining(remaining);
      countdown.dataset.state = "valid";
      caption.textContent = "left before the access token expires";
    } else {
      countdown.textContent = "expired";
      countdown.dataset.state = "expired";
      caption.textContent = "the next API call will refresh it silently";
    }
  }

  function update(next) {
    state = next;
    const labels = { "signed-in": "signed in", "signed-out": "signed out", restoring: "restoring" };
    const look = state.refreshing ? "busy" : state.offline ? "offline" : state.status;
    badge.textContent = state.refreshing ? "refreshing…" : state.offline ? `${labels[state.status]} · offline` : labels[state.status];
    badge.className = `badge badge-${look}`;
    values.user.textContent = state.user ? state.user.name : "—";
    values.session.textContent = short(state.sessionId);
    values.token.textContent = short(state.tokenId);
    values.issued.textContent = state.issuedAt ? formatClock(state.issuedAt) : "—";
    values.expires.textContent = state.expiresAt ? formatClock(state.expiresAt) : "—";
    values.ahead.textContent = !state.refreshAhead ? "off"
      : state.refreshAheadAt ? `at ${formatClock(state.refreshAheadAt)}`
      : state.status === "signed-in" ? `off: token < ${2 * state.refreshAhead} s`
      : `${state.refreshAhead} s early`;
    values.ahead.title = `Refreshes ${state.refreshAhead} s before expiry, when that is at most half the token's `
      + "lifetime; shorter tokens are refreshed when a call finds them expired.";
    values.refreshes.textContent = String(state.refreshes);
    values.binding.id = "token-binding";
    values.binding.textContent = state.keyThumbprint ? `bound to this browser · key ${short(state.keyThumbprint)}`
      : state.status !== "signed-in" ? (state.dpop === "available" ? "—" : `unbound: ${state.dpop} in this browser`)
      : state.dpop === "available" ? "not bound (no key of this browser)" : `unbound: ${state.dpop} in this browser`;
    values.binding.title = state.keyThumbprint
      ? `The refresh cookie works only with proofs of this browser's key (RFC 7638 thumbprint ${state.keyThumbprint}).`
      : "A copied refresh cookie would work elsewhere: this session is not bound to a key.";
    values.binding.dataset.thumbprint = state.keyThumbprint ?? "";
    burstButton.disabled = state.status !== "signed-in";
    refreshButton.disabled = state.status !== "signed-in";
    tick();
  }

  function log({ at, level, text }) {
    const first = entries.firstElementChild;
    if (first && first.dataset.text === text) {
      const count = Number(first.dataset.count) + 1;
      first.dataset.count = String(count);
      first.querySelector(".count").textContent = `×${count}`;
      first.querySelector("time").textContent = formatClock(at);
      return;
    }
    entries.prepend(h("li", { class: `log-${level}`, dataset: { text, count: "1" } },
      h("time", {}, formatClock(at)), h("span", { class: "log-text" }, text), h("span", { class: "count" })));
    while (entries.childElementCount > SHOWN_ENTRIES) entries.lastElementChild.remove();
  }

  burstButton.addEventListener("click", async () => {
    const before = auth.getSnapshot().refreshes;
    const results = await Promise.allSettled(Array.from({ length: BURST },
      () => auth.fetch("/api/profiles/me", { headers: { Accept: "application/json" } })));
    const ok = results.filter((r) => r.status === "fulfilled" && r.value.ok).length;
    const refreshes = auth.getSnapshot().refreshes - before;
    log({ at: Date.now(), level: ok === BURST ? "ok" : "error",
          text: `${BURST} calls at once → ${ok} ✓ · ${refreshes} refresh${refreshes === 1 ? "" : "es"} by this tab` });
  });
  refreshButton.addEventListener("click", () => {
    auth.refreshNow().catch((error) => log({ at: Date.now(), level: "error", text: `refresh failed: ${error.message}` }));
  });

  auth.getLog().forEach(log);
  auth.subscribe(update);
  auth.onLog(log);
  update(state);
  setInterval(tick, 100);
  return { log: (level, text) => log({ at: Date.now(), level, text }) };
}
