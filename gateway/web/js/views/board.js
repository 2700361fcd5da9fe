/** The board: newest first, paged with "More"; write, edit and delete your own posts. */

import { describeError } from "../api.js";
import { field, form, h, notice, replace, timeElement } from "../dom.js";

export function boardView(ctx) {
  const { api, state } = ctx;
  const me = state.status === "signed-in" ? state.user : null;
  const list = h("div", { class: "posts", "aria-live": "polite" });
  const status = h("div", { class: "list-status" }, h("p", { class: "muted" }, "Loading posts…"));
  const more = h("button", { type: "button", class: "button button-quiet more", hidden: true }, "More");
  let cursor = null;

  async function loadPage() {
    more.disabled = true;
    try {
      const page = await api.boards.list(cursor);
      cursor = page.next_cursor;
      list.append(...page.items.map((post) => postCard(ctx, post, me)));
      replace(status, list.childElementCount ? "" : h("p", { class: "muted empty" }, "No posts yet. Write the first one."));
      more.hidden = !cursor;
    } catch (error) {
      replace(status, notice(describeError(error), "error"));
    } finally {
      more.disabled = false;
    }
  }
  more.addEventListener("click", loadPage);

  let composer;
  if (me) {
    const title = field({ label: "Title", name: "title", maxlength: 200, required: true });
    const content = field({ label: "Content", name: "content", multiline: true, rows: 4, required: true });
    const write = form({
      fields: [title, content],
      submitLabel: "Post",
      className: "composer",
      onSubmit: async (values) => {
        const post = await api.boards.create(values);
        list.prepend(postCard(ctx, post, me));
        status.replaceChildren();
        title.input.value = "";
        content.input.value = "";
      },
    });
    composer = h("section", { class: "card", "aria-labelledby": "compose-heading" },
      h("h2", { id: "compose-heading" }, "Write a post"), write.node);
  } else {
    composer = h("section", { class: "card invite" },
      h("p", {}, h("a", { href: "#/login" }, "Log in"), " or ", h("a", { href: "#/signup" }, "sign up"),
        " to write on the board."));
  }

  loadPage();
  return h("section", { class: "board" },
    h("h1", {}, "Board"),
    composer,
    list,
    status,
    h("div", { class: "more-row" }, more));
}

function postCard(ctx, post, me) {
  const card = h("article", { class: "card post", dataset: { postId: post.id } });
  const own = me && post.author.id === me.id;

  function show(current) {
    post = current;
    const edited = post.updated_at !== post.created_at;
    replace(card,
      h("header", { class: "post-header" },
        h("h2", { class: "post-title" }, post.title),
        h("p", { class: "post-meta" },
          "by ", h("a", { href: `#/profiles/${encodeURIComponent(post.author.id)}`, class: "author" }, post.author.name),
          " · ", timeElement(post.created_at),
          edited ? h("span", { class: "edited" }, " · edited") : null)),
      h("div", { class: "post-content" }, post.content),
      own ? h("footer", { class: "post-actions" },
        h("button", { type: "button", class: "button button-quiet", onClick: edit }, "Edit"),
        h("button", { type: "button", class: "button button-danger-quiet", onClick: confirmDelete }, "Delete"))
        : null,
    );
  }

  function edit() {
    const title = field({ label: "Title", name: "title", value: post.title, maxlength: 200, required: true });
    const content = field({ label: "Content", name: "content", value: post.content, multiline: true, rows: 5,
                            required: true });
    const cancel = h("button", { type: "button", class: "button button-quiet", onClick: () => show(post) }, "Cancel");
    const editor = form({
      fields: [title, content],
      submitLabel: "Save",
      extraButtons: [cancel],
      className: "post-editor",
      onSubmit: async (values) => show(await ctx.api.boards.update(post.id, values)),
    });
    replace(card, h("h2", { class: "post-title" }, "Edit post"), editor.node);
    title.input.focus();
  }

  function confirmDelete() {
    const error = h("div", { class: "delete-error" });
    const yes = h("button", { type: "button", class: "button button-danger" }, "Yes, delete");
    const keep = h("button", { type: "button", class: "button button-quiet", onClick: () => show(post) }, "Keep");
    yes.addEventListener("click", async () => {
      yes.disabled = true;
      try {
        await ctx.api.boards.remove(post.id);
        card.remove();
      } catch (err) {
        yes.disabled = false;
        replace(error, notice(describeError(err), "error"));
      }
    });
    const footer = card.querySelector(".post-actions");
    replace(footer, h("span", { class: "confirm-text" }, "Delete this post?"), yes, keep, error);
    keep.focus();
  }

  show(post);
  return card;
}
