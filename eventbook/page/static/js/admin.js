// For admins: the accounts (role, disabled) and the whole system's figures.

import * as api from "./api.js";
import { askFirst, card, cards, errorBox, field, h, input, select } from "./dom.js";
import { go } from "./context.js";
import { money, plural, when } from "./format.js";
import { run } from "./forms.js";
import { pager } from "./events.js";

const ROLES = [
  ["", "Any role"],
  ["CUSTOMER", "Customer"],
  ["ORGANIZER", "Organizer"],
  ["ADMIN", "Admin"],
];

export async function users(view, _params, query) {
  const q = query.get("q") || "";
  const roleFilter = query.get("role") || "";
  const page = Math.max(1, Number(query.get("page")) || 1);
  view.title("Users");
  const text = input("q", { type: "search", value: q, autocomplete: "off" });
  const role = select("role", ROLES, { value: roleFilter });
  const form = h("form", { class: "search", role: "search" }, field("Email or name", text), field("Role", role), h("button", { type: "submit" }, "Search"));
  const href = (p, over = {}) => {
    const params = new URLSearchParams({ ...(q ? { q } : {}), ...(roleFilter ? { role: roleFilter } : {}), page: String(p), ...over });
    return `#/admin/users?${params}`;
  };
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const params = new URLSearchParams();
    if (text.value.trim()) params.set("q", text.value.trim());
    if (role.value) params.set("role", role.value);
    go(`#/admin/users?${params}`);
  });
  view.add(form);

  const params = new URLSearchParams({ page: String(page), perPage: "25" });
  if (q) params.set("q", q);
  if (roleFilter) params.set("role", roleFilter);
  const result = await api.list(`/api/admin/users?${params}`);
  if (!view.alive()) return;
  const me = api.currentUser();
  view.add(
    cards(h(
      "table",
      { class: "list users" },
      h("caption", {}, plural(result.total, "account")),
      h("thead", {}, h("tr", {}, ["Account", "Role", "Status", "Since", "Actions"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, result.items.map((user) => userRow(user, me))),
    )),
  );
  view.add(pager(result, page, (p) => href(p)));
}

function userRow(user, me) {
  const box = errorBox();
  const status = h("td", { class: "status" }, user.disabled ? "Disabled" : "Active");
  const actions = h("td", { class: "actions" });
  const label = user.email + (user.name ? ` (${user.name})` : "");
  const row = h("tr", { "data-email": user.email }, h("th", { scope: "row" }, label), h("td", {}, user.role.toLowerCase()), status, h("td", {}, when(user.createdAt)), actions);
  if (user.id === me.id) {
    actions.append("(you)");
    return row;
  }
  const toggle = h("button", { type: "button", class: user.disabled ? "secondary" : "danger", "aria-label": `${user.disabled ? "Enable" : "Disable"} ${user.email}` }, user.disabled ? "Enable" : "Disable");
  const flip = async (button) => {
    const changed = await run(button, box, () => api.patch(`/api/admin/users/${user.id}`, { disabled: !user.disabled }));
    if (changed) replace(row, userRow(changed, me), 0);
  };
  if (user.disabled) {
    toggle.addEventListener("click", () => flip(toggle));
    actions.append(toggle);
  } else {
    // A disable gives up the account's holds and places in line for good: asked twice.
    const yes = h("button", { type: "button", class: "danger", "aria-label": `Yes, disable ${user.email}: their holds and places in line are given up` }, "Yes, disable");
    const no = h("button", { type: "button", class: "secondary", "aria-label": `Keep active: ${user.email}` }, "Keep active");
    yes.addEventListener("click", () => flip(yes));
    actions.append(askFirst(toggle, "Disable this account? ", yes, no));
  }
  // Another admin too may be made a customer: only demoting oneself is refused, and this is not one's own row.
  actions.append(roleButton(user, me, row, box), box);
  return row;
}

/** The button that moves `user` to the other role: a customer to organizer, anyone else to customer. */
function roleButton(user, me, row, box) {
  const other = user.role === "CUSTOMER" ? "ORGANIZER" : "CUSTOMER";
  // Its name starts with the words it shows (WCAG 2.5.3): "Make customer" said to voice control finds it.
  const swap = h("button", { type: "button", class: "secondary", "aria-label": `Make ${other.toLowerCase()}: ${user.email}` }, `Make ${other.toLowerCase()}`);
  swap.addEventListener("click", async () => {
    const changed = await run(swap, box, () => api.patch(`/api/admin/users/${user.id}`, { role: other }));
    if (changed) replace(row, userRow(changed, me), 1);
  });
  return swap;
}

/** Put the changed row in place, keeping the keyboard focus on the same button. */
function replace(row, changed, button) {
  card(changed, row.closest("table"));
  row.replaceWith(changed);
  const buttons = [...changed.querySelectorAll("button")].filter((b) => !b.closest("[hidden]"));
  (buttons[button] || buttons[0])?.focus();
}

function counts(title, object, format = String, key = (k) => k.toLowerCase()) {
  const entries = Object.entries(object || {});
  return h(
    "section",
    { class: "card" },
    h("h2", {}, title),
    entries.length ? h("dl", { class: "facts" }, entries.flatMap(([k, v]) => [h("dt", {}, key(k)), h("dd", {}, format(v, k))])) : h("p", {}, "None."),
  );
}

export async function stats(view) {
  view.title("Figures");
  const figures = await api.get("/api/admin/stats");
  if (!view.alive()) return;
  view.add(
    h(
      "dl",
      { class: "facts figures" },
      [
        ["Bookings", figures.bookings],
        ["Tickets sold", figures.ticketsSold],
        ["Active holds", figures.activeHolds],
        ["Waiting", figures.waitingEntries],
      ].flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))]),
    ),
    h(
      "div",
      { class: "grid" },
      counts("Users by role", figures.usersByRole),
      counts("Events by status", figures.eventsByStatus),
      counts("Revenue", figures.revenueByCurrency, (v, k) => money(v, k), (k) => k),
      counts("Notifications", figures.notificationsByStatus),
    ),
  );
}
