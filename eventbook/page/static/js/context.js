// What every view may need: the features this server has, the user's role, navigation,
// the notice line under the header and the announcer.

import { currentUser } from "./api.js";

/** Parts of the API this server serves (see eventbook/page: FEATURES). */
const features = new Set((document.body.dataset.features || "").split(/\s+/).filter(Boolean));

export function has(feature) {
  return features.has(feature);
}

export function role() {
  const user = currentUser();
  return user ? user.role : null;
}

export function isCustomer() {
  return role() === "CUSTOMER";
}

/** May the current user manage this event (its organizer, or an admin)? */
export function manages(event) {
  const user = currentUser();
  return Boolean(user && (user.role === "ADMIN" || (user.role === "ORGANIZER" && event.organizerId === user.id)));
}

/** Show `hash`. With `from`, the control whose action leads there: only while it is still
 * shown. A user who went elsewhere while the action's answer was on its way stays there,
 * and the notice meant for `hash`, if any, shows now. */
export function go(hash, from = null) {
  if (from && !from.isConnected) {
    const text = takeNotice();
    if (text) showNotice(text);
    return;
  }
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

let pending = null;

/** Show `text` in the notice line after the next navigation (or now, with `now`). */
export function notice(text, now = false) {
  if (now) showNotice(text);
  else pending = text;
}

/** The notice line: #notice, inside a live region of index.html that is never hidden (a
 * region shown in the step its text is set is not read out). */
export function showNotice(text) {
  const el = document.getElementById("notice");
  el.textContent = text || "";
  el.hidden = !text;
}

let announcing = null;

/** Have screen readers say `text` now, through the page's announcer (index.html): for a
 * message shown where no live region is, e.g. at a field that already has the focus. The
 * announcer is emptied first and filled a moment later, so that the same text twice is
 * said twice (a region whose text does not change says nothing). */
export function announce(text) {
  const el = document.getElementById("announcer");
  el.textContent = "";
  clearTimeout(announcing);
  announcing = setTimeout(() => {
    el.textContent = text;
  }, 100); // not in the same frame as the emptying, which the accessibility tree may never see
}

/** The notice kept for this navigation, shown once. */
export function takeNotice() {
  const text = pending;
  pending = null;
  return text;
}

// Holds the customer has taken, by event, so that the event page can lead back to them
// after a reload (the API does not list them). Ids only: no token is stored.
function key(kind, eventId) {
  const user = currentUser();
  return `eventbook.${kind}.${user ? user.id : 0}.${eventId}`;
}

export function rememberHold(eventId, holdId) {
  sessionStorage.setItem(key("hold", eventId), String(holdId));
}

export function rememberedHold(eventId) {
  return Number(sessionStorage.getItem(key("hold", eventId))) || null;
}

export function forgetHold(eventId) {
  sessionStorage.removeItem(key("hold", eventId));
}
