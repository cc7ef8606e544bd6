// The account pages (landing, sign up, sign in, password reset), the site list and the settings.

import { allSites, del, get, post, put } from "./api.js";
import { announce, busy, confirmDialog, copyButton, errorBox, field, formatNumber, h, loading, navigate, setTitle, timeElement } from "./ui.js";

export function landingPage(main) {
  setTitle("");
  main.append(
    h(
      "section",
      { class: "hero" },
      h("p", { class: "eyebrow", text: "Privacy-friendly analytics" }),
      h("h1", { text: "Know your audience without tracking people." }),
      h("p", {
        class: "lead",
        text: "Squirrel Stats counts pageviews, visitors, sources and devices with no cookies, no stored IP addresses and no personal data. One small script, one clear dashboard.",
      }),
      h(
        "div",
        { class: "actions" },
        h("a", { class: "button large", href: "/signup", text: "Create a free account" }),
        h("a", { class: "button secondary large", href: "/login", text: "Sign in" }),
      ),
    ),
    h(
      "section",
      { class: "features", "aria-label": "Features" },
      feature("No cookies, no consent banner", "Visitors are counted with a daily-rotating hash; nothing follows them across days or sites."),
      feature("Stored before we say OK", "A pageview is acknowledged only once it is committed to the database."),
      feature("One binary", "SQLite on one machine, PostgreSQL and Redis when you grow. The dashboard ships inside."),
    ),
  );
}

function feature(title, text) {
  return h("article", { class: "card feature" }, h("h2", { text: title }), h("p", { class: "muted", text }));
}

// A sign-in or sign-up form: the server's error is shown in an alert next to the fields.
function authPage(main, context, { title, intro, submit, busyLabel, endpoint, footer }) {
  setTitle(title);
  main.classList.add("narrow");
  const error = h("div", { class: "form-error", role: "alert" });
  const button = h("button", { type: "submit", class: "button block", text: submit });
  const isSignup = endpoint === "auth/signup";
  const form = h(
    "form",
    { class: "card form", novalidate: true },
    h("h1", { text: title }),
    h("p", { class: "muted", text: intro }),
    error,
    field({ label: "Email", name: "email", type: "email", autocomplete: "email" }),
    field({
      label: "Password",
      name: "password",
      type: "password",
      autocomplete: isSignup ? "new-password" : "current-password",
      minlength: isSignup ? 8 : undefined,
      hint: isSignup ? "At least 8 characters." : undefined,
    }),
    isSignup ? null : h("p", { class: "form-aside" }, h("a", { href: "/forgot-password", text: "Forgot your password?" })),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const email = form.elements.email.value.trim();
    const password = form.elements.password.value;
    if (!email || !password) {
      error.textContent = "Enter your email and password.";
      (email ? form.elements.password : form.elements.email).focus();
      return;
    }
    if (isSignup && password.length < 8) {
      error.textContent = "Password must be at least 8 characters long.";
      form.elements.password.focus();
      return;
    }
    try {
      const data = await busy(button, isSignup ? "Creating account…" : busyLabel, () => post(endpoint, { email, password }));
      context.session.setUser(data.user);
      announce(isSignup ? "Account created" : "Signed in");
      const next = context.search.get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/dashboard");
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  main.append(form, h("p", { class: "center muted" }, footer));
  form.elements.email.focus();
}

export function loginPage(main, context) {
  authPage(main, context, {
    title: "Sign in",
    intro: "Welcome back. Sign in to see your sites.",
    submit: "Sign in",
    busyLabel: "Signing in…",
    endpoint: "auth/login",
    footer: ["No account yet? ", h("a", { href: "/signup", text: "Create one" })],
  });
}

export function signupPage(main, context) {
  authPage(main, context, {
    title: "Create your account",
    intro: "Start counting visits in a minute. No credit card, no cookies.",
    submit: "Create account",
    endpoint: "auth/signup",
    footer: ["Already have an account? ", h("a", { href: "/login", text: "Sign in" })],
  });
}

export function forgotPasswordPage(main) {
  setTitle("Reset your password");
  main.classList.add("narrow");
  const message = h("div", { role: "status", class: "form-note" });
  const error = h("div", { class: "form-error", role: "alert" });
  const button = h("button", { type: "submit", class: "button block", text: "Send reset link" });
  const form = h(
    "form",
    { class: "card form", novalidate: true },
    h("h1", { text: "Reset your password" }),
    h("p", { class: "muted", text: "Enter the email of your account and we will send you a link to set a new password." }),
    error,
    message,
    field({ label: "Email", name: "email", type: "email", autocomplete: "email" }),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    message.textContent = "";
    const email = form.elements.email.value.trim();
    if (!email) {
      error.textContent = "Enter your email.";
      form.elements.email.focus();
      return;
    }
    try {
      await busy(button, "Sending…", () => post("auth/forgot-password", { email }));
      message.textContent = "If an account with that email exists, a password reset link has been sent. It works once, for 24 hours.";
      form.elements.email.value = "";
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  main.append(form, h("p", { class: "center muted" }, h("a", { href: "/login", text: "Back to sign in" })));
  form.elements.email.focus();
}

export function resetPasswordPage(main, context) {
  setTitle("Set a new password");
  main.classList.add("narrow");
  const uid = context.search.get("uid");
  const token = context.search.get("token");
  if (!uid || !token) {
    main.append(
      h(
        "section",
        { class: "card form" },
        h("h1", { text: "Set a new password" }),
        h("div", { class: "alert", role: "alert" }, h("p", { text: "Invalid reset link. Please request a new password reset." })),
        h("a", { class: "button", href: "/forgot-password", text: "Request a new link" }),
      ),
    );
    return;
  }
  const error = h("div", { class: "form-error", role: "alert" });
  const button = h("button", { type: "submit", class: "button block", text: "Set new password" });
  const form = h(
    "form",
    { class: "card form", novalidate: true },
    h("h1", { text: "Set a new password" }),
    error,
    field({ label: "New password", name: "password", type: "password", autocomplete: "new-password", minlength: 8, hint: "At least 8 characters." }),
    field({ label: "Confirm new password", name: "confirm", type: "password", autocomplete: "new-password", minlength: 8 }),
    button,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const password = form.elements.password.value;
    if (password.length < 8) {
      error.textContent = "Password must be at least 8 characters long.";
      form.elements.password.focus();
      return;
    }
    if (password !== form.elements.confirm.value) {
      error.textContent = "Passwords do not match.";
      form.elements.confirm.focus();
      return;
    }
    try {
      await busy(button, "Saving…", () => post("auth/reset-password", { uid, token, new_password: password }));
      context.session.setUser(null);
      main.replaceChildren(
        h(
          "section",
          { class: "card form", role: "status" },
          h("h1", { text: "Password changed" }),
          h("p", { text: "Your password is set. Every other session of your account was signed out." }),
          h("a", { class: "button", href: "/login", text: "Sign in" }),
        ),
      );
    } catch (failure) {
      error.textContent = failure.message;
    }
  });
  main.append(form);
  form.elements.password.focus();
}

export async function sitesPage(main, context) {
  setTitle("Sites");
  const list = h("div", { class: "site-list", "aria-busy": "true" }, loading("Loading your sites…"));
  const createError = h("div", { class: "form-error", role: "alert" });
  const createButton = h("button", { type: "submit", class: "button", text: "Add site", disabled: true });
  const nameInput = h("input", { id: "new-site-name", name: "name", type: "text", maxlength: 255, placeholder: "My blog", autocomplete: "off" });
  nameInput.addEventListener("input", () => {
    createButton.disabled = !nameInput.value.trim();
  });
  const createForm = h(
    "form",
    { class: "inline-form", "aria-label": "Add a site" },
    h("label", { for: "new-site-name", text: "Site name" }),
    h("div", { class: "inline-row" }, nameInput, createButton),
    createError,
  );

  async function load() {
    list.setAttribute("aria-busy", "true");
    try {
      const sites = await allSites();
      if (!context.isCurrent()) return;
      list.replaceChildren(sites.length ? sitesTable(sites) : emptySites());
    } catch (error) {
      list.replaceChildren(errorBox(error, load));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  createForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    createError.textContent = "";
    const name = nameInput.value.trim();
    if (!name) return;
    try {
      const site = await busy(createButton, "Adding…", () => post("sites", { name }));
      nameInput.value = "";
      createButton.disabled = true;
      announce(`Site ${site.name} added`);
      await load();
    } catch (error) {
      createError.textContent = error.message;
    }
  });

  function sitesTable(sites) {
    return h(
      "table",
      { class: "table sites" },
      h("caption", { class: "visually-hidden", text: "Your sites" }),
      h(
        "thead",
        {},
        h("tr", {}, h("th", { scope: "col", text: "Site" }), h("th", { scope: "col", class: "num", text: "Pageviews" }), h("th", { scope: "col", class: "actions-col" }, h("span", { class: "visually-hidden", text: "Actions" }))),
      ),
      h("tbody", {}, sites.map(siteRow)),
    );
  }

  function siteRow(site) {
    const nameCell = h(
      "td",
      { class: "site-name" },
      h("a", { href: `/dashboard/${site.id}`, class: "strong", text: site.name }),
      h("code", { class: "identifier", text: site.identifier }),
    );
    const rename = h("button", { type: "button", class: "button secondary small", text: "Rename", "aria-label": `Rename ${site.name}` });
    const remove = h("button", { type: "button", class: "button danger-outline small", text: "Delete", "aria-label": `Delete ${site.name}` });
    const row = h(
      "tr",
      { "data-site-id": site.id },
      nameCell,
      h("td", { class: "num", "data-label": "Pageviews", text: formatNumber(site.pageview_count) }),
      h("td", { class: "actions-col" }, h("div", { class: "row-actions" }, rename, remove)),
    );
    rename.addEventListener("click", () => renameInline(site, nameCell, rename));
    remove.addEventListener("click", async () => {
      const confirmed = await confirmDialog({
        title: "Delete site",
        body: `Are you sure you want to delete "${site.name}"? This cannot be undone: every pageview and statistic of the site is removed.`,
        confirmLabel: "Delete site",
        danger: true,
      });
      if (!confirmed) return;
      try {
        await busy(remove, "Deleting…", () => del(`sites/${site.id}`));
        announce(`Site ${site.name} deleted`);
        await load();
      } catch (error) {
        nameCell.append(errorBox(error));
      }
    });
    return row;
  }

  function renameInline(site, cell, opener) {
    const input = h("input", { type: "text", name: "name", value: site.name, maxlength: 255, "aria-label": `New name for ${site.name}` });
    const save = h("button", { type: "submit", class: "button small", text: "Save" });
    const cancel = h("button", { type: "button", class: "button secondary small", text: "Cancel" });
    const error = h("div", { class: "form-error", role: "alert" });
    const form = h("form", { class: "rename-form" }, h("div", { class: "inline-row" }, input, save, cancel), error);
    const original = [...cell.childNodes];
    const restore = () => {
      cell.replaceChildren(...original);
      opener.focus();
    };
    cancel.addEventListener("click", restore);
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") restore();
    });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const name = input.value.trim();
      if (!name || name === site.name) {
        error.textContent = name ? "" : "A site needs a name.";
        if (name) restore();
        return;
      }
      try {
        await busy(save, "Saving…", () => put(`sites/${site.id}`, { name }));
        announce(`Site renamed to ${name}`);
        await load();
      } catch (failure) {
        error.textContent = failure.message;
      }
    });
    cell.replaceChildren(form);
    input.focus();
    input.select();
  }

  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Your sites" }), h("p", { class: "muted", text: "Each site has its own tracking snippet and statistics." })),
    h("section", { class: "card" }, createForm),
    h("section", { class: "card flush" }, list),
  );
  await load();
}

function emptySites() {
  return h(
    "div",
    { class: "empty" },
    h("h2", { text: "No sites yet" }),
    h("p", { class: "muted", text: "Add your first site above. You will get a one-line snippet to put on its pages." }),
  );
}

export async function settingsPage(main, context) {
  setTitle("Settings");
  const tokens = h("div", {}, loading("Loading API tokens…"));
  const created = h("div", { class: "token-created" });
  const error = h("div", { class: "form-error", role: "alert" });
  const nameInput = h("input", { id: "token-name", name: "name", type: "text", maxlength: 100, placeholder: "Weekly report script", autocomplete: "off", required: true });
  const createButton = h("button", { type: "submit", class: "button", text: "Create token" });
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Create an API token" },
    h("label", { for: "token-name", text: "Token name" }),
    h("div", { class: "inline-row" }, nameInput, createButton),
    error,
  );

  async function load() {
    try {
      const data = await get("auth/tokens");
      if (!context.isCurrent()) return;
      tokens.replaceChildren(data.results.length ? tokenTable(data.results) : h("p", { class: "empty muted", text: "No API tokens yet." }));
    } catch (failure) {
      tokens.replaceChildren(errorBox(failure, load));
    }
  }

  function tokenTable(list) {
    return h(
      "table",
      { class: "table tokens" },
      h("caption", { class: "visually-hidden", text: "API tokens" }),
      h(
        "thead",
        {},
        h("tr", {}, ["Name", "Token", "Created", "Last used"].map((text) => h("th", { scope: "col", text })), h("th", { scope: "col" }, h("span", { class: "visually-hidden", text: "Actions" }))),
      ),
      h(
        "tbody",
        {},
        list.map((token) => {
          const revoke = h("button", { type: "button", class: "button danger-outline small", text: "Revoke", "aria-label": `Revoke ${token.name}` });
          revoke.addEventListener("click", async () => {
            const confirmed = await confirmDialog({
              title: "Revoke token",
              body: `Scripts using "${token.name}" will stop working at once.`,
              confirmLabel: "Revoke token",
              danger: true,
            });
            if (!confirmed) return;
            try {
              await busy(revoke, "Revoking…", () => del(`auth/tokens/${token.id}`));
              announce(`Token ${token.name} revoked`);
              created.replaceChildren();
              await load();
            } catch (failure) {
              error.textContent = failure.message;
            }
          });
          return h(
            "tr",
            { "data-token-id": token.id },
            h("td", { class: "strong", text: token.name }),
            h("td", {}, h("code", { text: `${token.prefix}…` })),
            h("td", {}, timeElement(token.created_at)),
            h("td", {}, timeElement(token.last_used_at)),
            h("td", { class: "actions-col" }, revoke),
          );
        }),
      ),
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const name = nameInput.value.trim();
    if (!name) {
      error.textContent = "Give the token a name, so you know later what uses it.";
      nameInput.focus();
      return;
    }
    try {
      const token = await busy(createButton, "Creating…", () => post("auth/tokens", { name }));
      nameInput.value = "";
      const secret = h("code", { class: "secret", text: token.token });
      created.replaceChildren(
        h(
          "div",
          { class: "notice", role: "status" },
          h("p", { class: "strong", text: `Token "${token.name}" created. Copy it now: it is shown only once.` }),
          h("div", { class: "snippet-row" }, secret, copyButton(() => token.token)),
          h("p", { class: "hint" }, "Send it as ", h("code", { text: "Authorization: Bearer <token>" }), ". It can read sites and statistics, and change nothing."),
        ),
      );
      await load();
    } catch (failure) {
      error.textContent = failure.message;
    }
  });

  const user = context.session.user;
  main.append(
    h("div", { class: "page-head" }, h("h1", { text: "Settings" })),
    h(
      "section",
      { class: "card", "aria-labelledby": "account-heading" },
      h("h2", { id: "account-heading", text: "Account" }),
      h("dl", { class: "facts" }, h("dt", { text: "Email" }), h("dd", { text: user.email })),
      h("p", { class: "muted" }, "To change your password, ", h("a", { href: "/forgot-password", text: "request a reset link" }), "."),
    ),
    h(
      "section",
      { class: "card", "aria-labelledby": "tokens-heading" },
      h("h2", { id: "tokens-heading", text: "API tokens" }),
      h("p", { class: "muted", text: "Tokens let scripts read your sites and statistics through the JSON API without your password." }),
      form,
      created,
      tokens,
    ),
  );
  await load();
}
