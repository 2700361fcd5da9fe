/** My profile (view, edit name and bio) and other people's profiles. */

import { describeError } from "../api.js";
import { field, form, h, notice, replace, timeElement } from "../dom.js";

function profileCard(profile, extra = null) {
  return h("section", { class: "card profile" },
    h("div", { class: "profile-head" },
      h("div", { class: "avatar", "aria-hidden": "true" }, initials(profile.name)),
      h("div", {},
        h("h2", { class: "profile-name" }, profile.name),
        h("p", { class: "muted" }, "Member since ", timeElement(profile.created_at)))),
    profile.bio
      ? h("p", { class: "profile-bio" }, profile.bio)
      : h("p", { class: "profile-bio muted" }, "No bio yet."),
    extra);
}

function initials(name) {
  return Array.from(name.trim()).slice(0, 1).join("").toUpperCase() || "?";
}

export function myProfileView(ctx) {
  const { api, state } = ctx;
  const view = h("section", { class: "profile-page" }, h("h1", {}, "My profile"),
    h("p", { class: "muted" }, "Loading…"));

  api.profiles.me().then((profile) => {
    const shown = h("div");
    const render = (current) => replace(shown, profileCard(current,
      h("p", { class: "muted small" }, `Email: ${state.user.email}`)));
    render(profile);

    const name = field({ label: "Name", name: "name", value: profile.name, maxlength: 50, required: true });
    const bio = field({ label: "Bio", name: "bio", value: profile.bio ?? "", multiline: true, rows: 4, maxlength: 500,
                        hint: "Up to 500 characters." });
    const saved = h("div", { class: "saved" });
    const editor = form({
      fields: [name, bio],
      submitLabel: "Save",
      onSubmit: async (values) => {
        saved.replaceChildren();
        const updated = await api.profiles.updateMe(values);
        render(updated);
        replace(saved, notice("Saved.", "success"));
      },
    });
    replace(view, h("h1", {}, "My profile"), shown,
      h("section", { class: "card" }, h("h2", {}, "Edit profile"), saved, editor.node));
  }).catch((error) => {
    replace(view, h("h1", {}, "My profile"), notice(describeError(error), "error"));
  });
  return view;
}

export function profileView(ctx) {
  const { api, state } = ctx;
  const [userId] = ctx.params;
  const view = h("section", { class: "profile-page" }, h("h1", {}, "Profile"), h("p", { class: "muted" }, "Loading…"));
  api.profiles.get(userId).then((profile) => {
    const mine = state.status === "signed-in" && state.user.id === profile.user_id;
    replace(view, h("h1", {}, "Profile"), profileCard(profile,
      mine ? h("p", {}, h("a", { href: "#/me" }, "Edit your profile")) : null));
  }).catch((error) => {
    const text = error?.code === "not_found"
      ? "This person has no profile yet: it appears once they open their own profile page."
      : describeError(error);
    replace(view, h("h1", {}, "Profile"), notice(text, "error"));
  });
  return view;
}
