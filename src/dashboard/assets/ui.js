// Building blocks shared by the pages: element creation (text only, never HTML strings, so no
// user-provided value can become markup), navigation, announcements, number and time formats.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") el.textContent = value;
    else el.setAttribute(key, value);
  }
  append(el, children);
  return el;
}

let renderer = () => {};

export function onNavigate(fn) {
  renderer = fn;
}

export function navigate(path, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  renderer();
}

// Polite announcements for screen readers (saved, deleted, copied).
export function announce(message) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A new text node in a later task, so repeating the same message is announced again.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

export function setTitle(title) {
  document.title = title ? `${title} · Squirrel Stats` : "Squirrel Stats";
}

export function loading(label = "Loading…") {
  return h("p", { class: "state", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), label);
}

export function errorBox(error, retry) {
  return h(
    "div",
    { class: "alert", role: "alert" },
    h("p", { text: error && error.message ? error.message : String(error) }),
    retry ? h("button", { type: "button", class: "button secondary small", onclick: retry, text: "Try again" }) : null,
  );
}

const numberFormat = new Intl.NumberFormat();
const compactFormat = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

export const formatNumber = (n) => numberFormat.format(n);
export const formatCompact = (n) => (Math.abs(n) < 10000 ? numberFormat.format(n) : compactFormat.format(n));

export function formatDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

// Instants (ISO strings from the API) in the viewer's own time zone.
const dateTimeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

export function formatDateTime(iso) {
  if (!iso) return "Never";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateTimeFormat.format(date);
}

export function timeElement(iso) {
  return iso ? h("time", { datetime: iso, text: formatDateTime(iso) }) : h("span", { class: "muted", text: "Never" });
}

// A modal confirmation built on <dialog>: focus moves into it, Escape cancels, and focus returns to
// the element that opened it.
export function confirmDialog({ title, body, confirmLabel, danger = false }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": titleId },
      h(
        "form",
        { method: "dialog" },
        h("h2", { id: titleId, text: title }),
        h("p", { class: "muted", text: body }),
        h(
          "div",
          { class: "actions" },
          h("button", { type: "submit", value: "cancel", class: "button secondary", text: "Cancel" }),
          h("button", { type: "submit", value: "confirm", class: danger ? "button danger" : "button", text: confirmLabel }),
        ),
      ),
    );
    dialog.addEventListener("close", () => {
      const confirmed = dialog.returnValue === "confirm";
      dialog.remove();
      if (opener && typeof opener.focus === "function" && opener.isConnected) opener.focus();
      resolve(confirmed);
    });
    document.body.append(dialog);
    dialog.showModal();
    dialog.querySelector('button[value="cancel"]').focus();
  });
}

export function copyButton(getText, label = "Copy") {
  const button = h("button", { type: "button", class: "button secondary small", text: label });
  button.addEventListener("click", async () => {
    const text = getText();
    try {
      await navigator.clipboard.writeText(text);
      button.textContent = "Copied";
      announce("Copied to the clipboard");
    } catch {
      button.textContent = "Select and copy";
      announce("Copying is not allowed here: select the text and copy it");
    }
    setTimeout(() => {
      button.textContent = label;
    }, 2000);
  });
  return button;
}

// A form's submit button that shows progress and cannot be pressed twice.
export async function busy(button, label, work) {
  const idle = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
    button.textContent = idle;
  }
}

export function field({ label, name, type = "text", autocomplete, value, required = true, minlength, hint }) {
  const id = `field-${name}-${Math.random().toString(36).slice(2, 8)}`;
  const hintId = hint ? `${id}-hint` : undefined;
  return h(
    "div",
    { class: "field" },
    h("label", { for: id, text: label }),
    h("input", {
      id,
      name,
      type,
      autocomplete,
      value: value ?? "",
      required,
      minlength,
      "aria-describedby": hintId,
    }),
    hint ? h("p", { id: hintId, class: "hint", text: hint }) : null,
  );
}
