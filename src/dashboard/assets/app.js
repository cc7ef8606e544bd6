// The dashboard's entry point: finds who is signed in, routes the URL to a page, and keeps links
// inside the app (history API) so moving between pages never reloads it.

import { currentUser, post } from "./api.js";
import { forgotPasswordPage, landingPage, loginPage, resetPasswordPage, settingsPage, signupPage, sitesPage } from "./pages.js";
import { sitePage } from "./site.js";
import { announce, errorBox, h, loading, navigate, onNavigate, setTitle } from "./ui.js";

const ROUTES = [
  { pattern: /^\/$/, page: landingPage, auth: "guest" },
  { pattern: /^\/login$/, page: loginPage, auth: "guest" },
  { pattern: /^\/signup$/, page: signupPage, auth: "guest" },
  { pattern: /^\/forgot-password$/, page: forgotPasswordPage, auth: "any" },
  { pattern: /^\/reset-password$/, page: resetPasswordPage, auth: "any" },
  { pattern: /^\/dashboard$/, page: sitesPage, auth: "user" },
  { pattern: /^\/dashboard\/([0-9a-fA-F-]{36})$/, page: sitePage, auth: "user" },
  { pattern: /^\/settings$/, page: settingsPage, auth: "user" },
];

// Whether this browser was signed in when last seen. The session cookie is HttpOnly, so without
// this hint every stranger's first visit would ask the server who they are and get a 401.
const SIGNED_IN_HINT = "squirrel.signedIn";

const session = {
  user: undefined,
  setUser(user) {
    session.user = user;
    try {
      if (user) localStorage.setItem(SIGNED_IN_HINT, "1");
      else localStorage.removeItem(SIGNED_IN_HINT);
    } catch {
      // Storage disabled: the hint is only an optimisation.
    }
    renderNav();
  },
};

function probablySignedIn() {
  try {
    return localStorage.getItem(SIGNED_IN_HINT) === "1";
  } catch {
    return true;
  }
}

// Work a page started (timers, pending loads) that must stop when the viewer leaves it.
let cleanups = [];
let renderCount = 0;

async function render() {
  for (const cleanup of cleanups) cleanup();
  cleanups = [];
  const thisRender = (renderCount += 1);
  const main = document.getElementById("main");
  const path = location.pathname.replace(/\/+$/, "") || "/";
  const route = ROUTES.find((r) => r.pattern.test(path));

  if (session.user === undefined) {
    main.replaceChildren(loading());
    try {
      // Pages that need an account always ask; public pages only when this browser was signed in.
      const ask = probablySignedIn() || (route && route.auth === "user");
      session.setUser(ask ? await currentUser() : null);
    } catch (error) {
      main.replaceChildren(errorBox(error, () => render()));
      return;
    }
    if (thisRender !== renderCount) return;
  }
  if (!route) {
    setTitle("Page not found");
    main.replaceChildren(
      h(
        "section",
        { class: "card center narrow" },
        h("p", { class: "eyebrow", text: "404" }),
        h("h1", { text: "Page not found" }),
        h("a", { class: "button", href: session.user ? "/dashboard" : "/", text: "Go back home" }),
      ),
    );
    return;
  }
  if (route.auth === "user" && !session.user) {
    navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
    return;
  }
  if (route.auth === "guest" && session.user) {
    navigate("/dashboard", { replace: true });
    return;
  }
  const params = path.match(route.pattern).slice(1);
  const context = {
    session,
    params,
    search: new URLSearchParams(location.search),
    onCleanup: (fn) => cleanups.push(fn),
    isCurrent: () => thisRender === renderCount,
  };
  main.classList.remove("narrow");
  main.replaceChildren();
  await route.page(main, context);
  // Moving focus to the new content tells screen readers the page changed; not on the first load.
  if (thisRender > 1 && !main.contains(document.activeElement)) main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
}

function renderNav() {
  const nav = document.getElementById("nav");
  const user = session.user;
  if (!user) {
    nav.replaceChildren(
      h("a", { href: "/login", class: "nav-link", text: "Sign in" }),
      h("a", { href: "/signup", class: "button small", text: "Sign up" }),
    );
    return;
  }
  const logout = h("button", { type: "button", class: "button secondary small", text: "Log out" });
  logout.addEventListener("click", async () => {
    logout.disabled = true;
    try {
      await post("auth/logout");
    } catch {
      // The session is ended on the server or already gone; either way the viewer is signed out here.
    }
    session.setUser(null);
    announce("Signed out");
    navigate("/login");
  });
  nav.replaceChildren(
    h("a", { href: "/dashboard", class: "nav-link", text: "Sites" }),
    h("a", { href: "/settings", class: "nav-link", text: "Settings" }),
    h("span", { class: "nav-user", title: user.email, text: user.email }),
    logout,
  );
}

// Same-origin links to dashboard pages are followed without reloading; downloads, new tabs and
// modified clicks keep the browser's behaviour.
document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  if (link.target || link.hasAttribute("download")) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin) return;
  const path = url.pathname.replace(/\/+$/, "") || "/";
  if (!ROUTES.some((r) => r.pattern.test(path))) return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});

// A 401 from any call means the session ended (logged out elsewhere, expired, password reset).
window.addEventListener("squirrel:unauthenticated", () => {
  if (!session.user) return;
  session.setUser(null);
  navigate(`/login?next=${encodeURIComponent(location.pathname + location.search)}`, { replace: true });
});

window.addEventListener("popstate", () => render());
onNavigate(render);
renderNav();
render();
