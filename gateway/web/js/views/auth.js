/** Log in and sign up. A new account is logged in right away. */

import { field, form, h } from "../dom.js";

export function authView(ctx, mode) {
  const { auth, api, state, navigate } = ctx;
  const next = ctx.next && ctx.next !== "/login" && ctx.next !== "/signup" ? ctx.next : "/board";

  if (state.status === "signed-in") {
    return h("section", { class: "card narrow" },
      h("h1", {}, "You are logged in"),
      h("p", {}, "Logged in as ", h("strong", {}, state.user.name), ` (${state.user.email}).`),
      h("a", { href: "#/board", class: "button button-primary" }, "Go to the board"));
  }

  const email = field({ label: "Email", name: "email", type: "email", autocomplete: "email", required: true });
  const password = field({
    label: "Password", name: "password", type: "password", required: true,
    autocomplete: mode === "signup" ? "new-password" : "current-password",
    hint: mode === "signup" ? "At least 8 characters." : null,
  });
  const name = field({ label: "Name", name: "name", autocomplete: "name", maxlength: 50, required: true });

  if (mode === "signup") {
    const signup = form({
      fields: [email, password, name],
      submitLabel: "Sign up",
      onSubmit: async (values) => {
        await api.signup(values);
        await auth.login({ email: values.email, password: values.password });
        touchProfile(api);
        navigate(next);
      },
    });
    return h("section", { class: "card narrow" },
      h("h1", {}, "Create an account"),
      h("p", { class: "muted" }, "Your access token will live only in this page's memory; ",
        "the refresh token in a cookie scripts cannot read."),
      signup.node,
      h("p", { class: "switch" }, "Have an account? ", h("a", { href: "#/login" }, "Log in")));
  }

  const login = form({
    fields: [email, password],
    submitLabel: "Log in",
    onSubmit: async (values) => {
      await auth.login(values);
      touchProfile(api);
      navigate(next);
    },
  });
  return h("section", { class: "card narrow" },
    h("h1", {}, "Log in"),
    ctx.next && ctx.next !== "/login" ? h("p", { class: "muted" }, "Log in to see this page.") : null,
    login.node,
    h("p", { class: "switch" }, "No account yet? ", h("a", { href: "#/signup" }, "Sign up")));
}

/** The profile service creates a profile on its owner's first visit; make it visible to others. */
function touchProfile(api) {
  api.profiles.me().catch(() => {});
}
