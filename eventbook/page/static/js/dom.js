// Small DOM helpers. Text always goes in as text nodes (never innerHTML), so nothing
// the API returns can become markup.

let ids = 0;

/** A fresh id for label/aria wiring. */
export function uid(prefix = "f") {
  ids += 1;
  return `${prefix}-${ids}`;
}

/**
 * h("button", {type: "button", onclick: fn, class: "x"}, "Text", child...)
 * Attributes: on* are listeners, booleans set or omit the attribute, null/undefined are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "value") el.value = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A labelled form control with a place for its own error message under it. */
export function field(label, control, hint) {
  const id = control.id || uid((control.name || "f").replace(/[^\w-]/g, "-"));
  control.id = id;
  const error = h("span", { class: "field-error", id: `${id}-error`, hidden: true });
  const hintEl = hint ? h("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  control.setAttribute("aria-describedby", [hintEl && hintEl.id, error.id].filter(Boolean).join(" "));
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl, error);
}

export function input(name, attrs = {}) {
  return h("input", { name, type: "text", ...attrs });
}

export function select(name, options, attrs = {}) {
  return h(
    "select",
    { name, ...attrs },
    options.map(([value, text]) => h("option", { value, selected: String(value) === String(attrs.value ?? "") }, text)),
  );
}

/** A form that can no longer be sent: every control disabled, the values still shown. */
export function lock(form) {
  for (const el of form.elements) el.disabled = true;
  return form;
}

/**
 * Remove `row`, one of a list of fieldsets a form repeats (ticket types, seat sections).
 * The focus was on its Remove button, and would fall to the page's start: it goes to the
 * next row's first control, else the previous row's, else `fallback` (the list's "Add" button).
 */
export function removeRow(row, fallback) {
  const had = row.contains(document.activeElement);
  const near = row.nextElementSibling || row.previousElementSibling;
  row.remove();
  if (had) (near?.querySelector("input, select, textarea, button") || fallback).focus();
}

/** A message box for errors, announced by screen readers when it fills. */
export function errorBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

/**
 * A list table, returned as given: on a narrow screen page.css shows each row as a card,
 * each cell after its column's name (`data-label`). Some browsers drop a table's
 * semantics once CSS changes its display: the ARIA roles keep them.
 */
export function cards(table) {
  table.setAttribute("role", "table");
  for (const group of table.querySelectorAll(":scope > thead, :scope > tbody")) group.setAttribute("role", "rowgroup");
  for (const row of table.querySelectorAll(":scope > thead > tr, :scope > tbody > tr")) card(row, table);
  return table;
}

/** One row of a `cards` table, also one put in later. */
export function card(row, table) {
  const names = [...table.querySelectorAll(":scope > thead th")].map((th) => th.textContent);
  const heading = row.parentElement?.tagName === "THEAD";
  row.setAttribute("role", "row");
  [...row.children].forEach((cell, i) => {
    cell.setAttribute("role", heading ? "columnheader" : cell.tagName === "TH" ? "rowheader" : "cell");
    if (!heading) cell.dataset.label = names[i] ?? "";
  });
  return row;
}

/**
 * A button that asks before it acts: `ask` gives its place to "words yes no", with the
 * focus on `no`, the answer that changes nothing; `no` puts `ask` back.
 */
export function askFirst(ask, words, yes, no) {
  const question = h("span", { class: "question", hidden: true }, h("span", {}, words), yes, no);
  ask.addEventListener("click", () => {
    ask.hidden = true;
    question.hidden = false;
    no.focus();
  });
  no.addEventListener("click", () => {
    question.hidden = true;
    ask.hidden = false;
    ask.focus();
  });
  return h("span", { class: "confirm-step" }, ask, question);
}
