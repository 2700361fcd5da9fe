/**
 * Building the page with createElement and text nodes only: user data never goes through HTML
 * parsing (no innerHTML anywhere), so `<img src=x onerror=...>` in a post is just text.
 */

import { describeError } from "./api.js";

/** Create an element: `h("a", {href, class, onClick}, "text", childNode, [more])`. */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "value") node.value = value;
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "style") throw new Error("inline styles are forbidden by the CSP; use a class");
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

/** Append strings (as text) and nodes; null, undefined and false are skipped. */
export function append(node, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

/** Replace a node's children; like `append`, skips null, undefined and false. */
export function replace(node, ...children) {
  return append(clear(node), children);
}

let nextId = 0;

/**
 * A labelled input with a place for its error: returns {row, input, setError}. Every input has a
 * visible <label for=...>, so screen readers and `getByLabel` find it by its name.
 */
export function field({ label, name, type = "text", value = "", multiline = false, hint, ...attrs }) {
  const id = `f-${name}-${++nextId}`;
  const errorId = `${id}-error`;
  const input = multiline
    ? h("textarea", { id, name, rows: attrs.rows ?? 5, ...attrs, value })
    : h("input", { id, name, type, ...attrs, value });
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  input.setAttribute("aria-describedby", errorId);
  const row = h("div", { class: "field" },
    h("label", { for: id }, label),
    input,
    hint ? h("p", { class: "field-hint" }, hint) : null,
    error);
  return {
    row,
    input,
    setError(message) {
      error.textContent = message || "";
      error.hidden = !message;
      input.toggleAttribute("aria-invalid", Boolean(message));
    },
  };
}

/**
 * A form that shows API errors readably: `detail` above, field errors under their fields.
 * `onSubmit(values)` may throw; the submit button is disabled while it runs.
 */
export function form({ fields, submitLabel, onSubmit, extraButtons = [], className = "" }) {
  const alert = h("div", { class: "alert alert-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button button-primary" }, submitLabel);
  const node = h("form", { class: `form ${className}`.trim(), novalidate: true },
    alert,
    fields.map((f) => f.row),
    h("div", { class: "form-actions" }, submit, extraButtons));

  const showError = (error) => {
    const messages = error?.errors ?? [];
    let placed = 0;
    for (const { field: name, message } of messages) {
      const target = fields.find((f) => f.input.name === name);
      if (target) {
        target.setError(message);
        placed += 1;
      }
    }
    const unplaced = messages.filter(({ field: name }) => !fields.some((f) => f.input.name === name));
    replace(alert,
      h("p", {}, describeError(error)),
      unplaced.length ? h("ul", {}, unplaced.map((e) => h("li", {}, `${e.field}: ${e.message}`))) : null);
    alert.hidden = false;
    if (!placed) alert.focus?.();
  };

  node.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.hidden = true;
    fields.forEach((f) => f.setError(""));
    const values = Object.fromEntries(fields.map((f) => [f.input.name, f.input.value]));
    submit.disabled = true;
    try {
      await onSubmit(values);
    } catch (error) {
      if (node.isConnected) showError(error);
    } finally {
      submit.disabled = false;
    }
  });
  return { node, showError, submit };
}

/** A readable notice: kind is "info", "success" or "error". */
export function notice(text, kind = "info") {
  return h("div", { class: `alert alert-${kind}`, role: kind === "error" ? "alert" : "status" }, text);
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

export function formatDate(value) {
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? String(value) : dateTime.format(date);
}

export function formatClock(value) {
  return clock.format(new Date(value));
}

/** A <time> element showing a timestamp readably, with the exact value as its datetime. */
export function timeElement(value) {
  return h("time", { datetime: value, title: value }, formatDate(value));
}
