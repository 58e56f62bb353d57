// Showing API errors where they belong: a field's messages next to that field, the
// rest in the error box beside the button that sent the request.

import { ApiError } from "./api.js";
import { announce } from "./context.js";
import { h } from "./dom.js";
import { when } from "./format.js";

/** A message as a sentence: with a full stop, unless it has its own. */
function stop(text) {
  return /[.!?)]$/.test(text) ? text : `${text}.`;
}

/** Messages as one text: a full stop after each one but the last, unless it has its own. */
export function sentences(...parts) {
  const given = parts.filter(Boolean);
  return given.map((part, i) => (i === given.length - 1 ? part : stop(part))).join(" ");
}

/** ["ticketTypes.0.price", ["Not a valid number."]] pairs of a nested `errors` object. */
function flatten(errors, prefix = "") {
  const pairs = [];
  for (const [key, value] of Object.entries(errors || {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (Array.isArray(value) && value.every((item) => typeof item === "string")) pairs.push([path, value]);
    else if (Array.isArray(value)) value.forEach((item, i) => pairs.push(...flatten({ [i]: item }, path)));
    else if (value && typeof value === "object") pairs.push(...flatten(value, path));
    else pairs.push([path, [String(value)]]);
  }
  return pairs;
}

function readable(path) {
  // Messages about the whole request, or about what the page built from the choices made (no field of its own).
  if (["_schema", "items", "seatIds"].includes(path)) return "";
  return path
    .split(".")
    .map((part) => (/^\d+$/.test(part) ? `#${Number(part) + 1}` : part.replace(/([A-Z])/g, " $1").toLowerCase()))
    .join(" ");
}

export function messageOf(error) {
  if (!(error instanceof ApiError)) return `Something went wrong in this page: ${error && error.message}`;
  let text = error.message;
  if (error.body.checkedInAt) text += ` (${when(error.body.checkedInAt)})`;
  if (error.status === 429 && error.retryAfter) text += ` (try again in ${error.retryAfter} s)`;
  return text;
}

export function clearErrors(form, box) {
  if (box) {
    box.hidden = true;
    box.textContent = "";
    delete box.dataset.code;
    delete box.dataset.status;
  }
  if (!form) return;
  for (const el of form.querySelectorAll(".field-error")) {
    el.hidden = true;
    el.textContent = "";
  }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

/**
 * Show `error` in `box`; with a `form`, messages of fields it has go next to them.
 * `codeFields` names the field a conflict code is about ({email_taken: "email"});
 * `fields` the form's control of a field the request named otherwise
 * ({"items.0.count": "count-3"}).
 */
export function showError(box, error, form = null, codeFields = {}, fields = {}) {
  clearErrors(form, box);
  if (error instanceof ApiError) {
    // for the view that shows it
    box.dataset.code = error.code;
    box.dataset.status = String(error.status);
  }
  const rest = [];
  const pairs = flatten(error instanceof ApiError ? error.errors : {});
  if (form && error instanceof ApiError && codeFields[error.code]) pairs.push([codeFields[error.code], [messageOf(error)]]);
  let first = null;
  let firstMessage = "";
  for (const [path, messages] of pairs) {
    const control = form && form.querySelector(`[name="${CSS.escape(fields[path] || path)}"]`);
    const slot = control && form.querySelector(`#${CSS.escape(control.id)}-error`);
    if (slot) {
      slot.textContent = messages.join(" ");
      slot.hidden = false;
      control.setAttribute("aria-invalid", "true");
      if (!first) {
        first = control;
        firstMessage = slot.textContent;
      }
    } else {
      const label = readable(path);
      rest.push(label ? `${label}: ${messages.join(" ")}` : messages.join(" "));
    }
  }
  // A conflict shown at its field needs no second copy by the button, unless more is left.
  const placed = first && codeFields[error.code] && !rest.length;
  // A refusal that names the customer's own hold leads to it; one that names their
  // booking of the event, to their bookings.
  let next = null;
  if (!placed && error instanceof ApiError && error.body.holdId) next = h("a", { href: `#/holds/${error.body.holdId}` }, "Open that hold.");
  else if (!placed && error instanceof ApiError && error.code === "already_booked") next = h("a", { href: "#/bookings" }, "See your bookings.");
  const text = sentences(messageOf(error), ...rest);
  box.textContent = placed ? "" : next ? stop(text) : text;
  if (next) box.append(" ", next);
  box.hidden = placed;
  if (!first) return;
  // Focus moving to a field reads out its message (aria-describedby), but a field that has
  // the focus already (Enter pressed in it) is not read again: the announcer says it.
  if (document.activeElement === first) announce(firstMessage);
  else first.focus();
}

/**
 * Run `fn` for a click or a submit: the button is busy meanwhile, errors land in `box`
 * (and next to the form's fields). Resolves to fn's result, or undefined after an error.
 */
export async function run(button, box, fn, { form = null, codeFields = {}, fields = {} } = {}) {
  // Busy, not disabled: a disabled button drops the keyboard focus to the page's start.
  if (button && button.getAttribute("aria-busy") === "true") return undefined; // a second click meanwhile
  clearErrors(form, box);
  if (button) button.setAttribute("aria-busy", "true");
  try {
    return await fn();
  } catch (error) {
    showError(box, error, form, codeFields, fields);
    if (!(error instanceof ApiError)) console.warn(error); // eslint-disable-line no-console
    return undefined;
  } finally {
    if (button) button.setAttribute("aria-busy", "false");
  }
}

/** The form's named controls as an object of trimmed strings, passwords as typed (checkboxes: booleans). */
export function values(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.type === "radio") {
      if (el.checked) out[el.name] = el.value;
    } else out[el.name] = el.type === "password" ? el.value : el.value.trim(); // a password is sent as typed
  }
  return out;
}
