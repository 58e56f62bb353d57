// For organizers (their own events) and admins (any): create and edit events, ticket
// types and seat maps; attendees, figures, the CSV, check-in at the door, the waiting list.

import * as api from "./api.js";
import { askFirst, cards, errorBox, field, h, input, lock, removeRow, select } from "./dom.js";
import { go, has, manages, notice } from "./context.js";
import { fromLocalInput, money, plural, seatName, toLocalInput, when } from "./format.js";
import { clearErrors, run, values } from "./forms.js";
import { pager } from "./events.js";
import { seatEditor } from "./seats.js";

const CURRENCIES = ["EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "CAD", "AUD", "JPY"];
const SHOWS = [
  ["upcoming", "Upcoming"],
  ["scheduled", "Scheduled, past ones too"],
  ["cancelled", "Cancelled"],
];

export async function list(view, _params, query) {
  const user = api.currentUser();
  const page = Math.max(1, Number(query.get("page")) || 1);
  const show = SHOWS.some(([v]) => v === query.get("show")) ? query.get("show") : "upcoming";
  view.title(user.role === "ADMIN" ? "Manage events" : "My events");
  // Sent with its button, as a search is: a select that led elsewhere on `change` would
  // move a keyboard user on at the first arrow key that looks through its options.
  const chooser = select("show", SHOWS, { value: show });
  const filter = h("form", { class: "search" }, field("Show", chooser), h("button", { type: "submit", class: "secondary" }, "Show"));
  filter.addEventListener("submit", (e) => {
    e.preventDefault();
    go(`#/manage?show=${chooser.value}`);
  });
  view.add(h("div", { class: "toolbar" }, filter, h("a", { class: "button", href: "#/manage/new" }, "New event")));

  const params = new URLSearchParams({ page: String(page), perPage: "20" });
  if (user.role !== "ADMIN") params.set("organizerId", String(user.id));
  if (show === "scheduled") params.set("status", "SCHEDULED");
  if (show === "cancelled") params.set("status", "CANCELLED");
  const result = await api.list(`/api/events?${params}`);
  if (!view.alive()) return;
  if (!result.items.length) {
    view.add(h("p", {}, "No events here. ", h("a", { href: "#/manage/new" }, "Create one.")));
    return;
  }
  view.add(
    cards(h(
      "table",
      { class: "list" },
      h("caption", {}, plural(result.total, "event")),
      h("thead", {}, h("tr", {}, ["Event", "Date", "Sold or held", "Status"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        result.items.map((event) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, h("a", { href: `#/manage/${event.id}` }, event.title)),
            h("td", {}, when(event.date)),
            h("td", {}, `${event.totalTickets - event.availableTickets - event.setAsideTickets} / ${event.totalTickets}`),
            h("td", {}, event.status === "CANCELLED" ? "Cancelled" : "Scheduled"),
          ),
        ),
      ),
    )),
  );
  view.add(pager(result, page, (n) => `#/manage?show=${show}&page=${n}`));
}

function eventFields(event = {}) {
  return [
    field("Title", input("title", { value: event.title || "", required: true, maxlength: "200" })),
    field("Description", h("textarea", { name: "description", rows: "3", maxlength: "5000" }, event.description || "")),
    field("Date and time", input("date", { type: "datetime-local", value: toLocalInput(event.date), required: true }), "in your time zone"),
    field("Location", input("location", { value: event.location || "", required: true, maxlength: "200" })),
    field("Capacity (tickets in all)", input("totalTickets", { type: "number", min: "1", value: event.totalTickets ? String(event.totalTickets) : "100", required: true })),
  ];
}

function typeRow(list, addType, type = { name: "", price: "0.00", quantity: "" }) {
  const index = list.children.length;
  // named by the row's legend too: "Remove ticket type 2", as the form has several
  const remove = h("button", { type: "button", class: "secondary", "aria-label": `Remove ticket type ${index + 1}` }, "Remove");
  const row = h(
    "fieldset",
    { class: "type-edit" },
    h("legend", {}, `Ticket type ${index + 1}`),
    field("Name", input(`ticketTypes.${index}.name`, { value: type.name, required: true })),
    field("Price", input(`ticketTypes.${index}.price`, { value: type.price, inputmode: "decimal", required: true }), "e.g. 25.00"),
    field("Quantity", input(`ticketTypes.${index}.quantity`, { type: "number", min: "1", value: type.quantity, required: true })),
    remove,
  );
  remove.addEventListener("click", () => {
    removeRow(row, addType);
    // keep the names in order, so errors from the API land on the right row
    [...list.children].forEach((set, i) => {
      set.querySelector("legend").textContent = `Ticket type ${i + 1}`;
      set.querySelector("button").setAttribute("aria-label", `Remove ticket type ${i + 1}`);
      for (const el of set.querySelectorAll("[name]")) el.name = el.name.replace(/^ticketTypes\.\d+\./, `ticketTypes.${i}.`);
    });
  });
  list.append(row);
}

export function create(view) {
  view.title("New event");
  const types = h("div", { class: "types-edit" });
  const addType = h("button", { type: "button", class: "secondary" }, "Add a ticket type");
  typeRow(types, addType, { name: "General admission", price: "0.00", quantity: "" });
  addType.addEventListener("click", () => {
    typeRow(types, addType);
    types.lastElementChild.querySelector("input").focus();
  });
  const submit = h("button", { type: "submit" }, "Create event");
  const box = errorBox();
  const form = h(
    "form",
    { class: "card", novalidate: true },
    eventFields(),
    field("Currency", select("currency", CURRENCIES.map((c) => [c, c]), { value: "EUR" })),
    h(
      "fieldset",
      { class: "choice" },
      h("legend", {}, "Seating"),
      h("label", {}, h("input", { type: "radio", name: "seating", value: "GENERAL", checked: true }), " General admission (no seats)"),
      has("seats") ? h("label", {}, h("input", { type: "radio", name: "seating", value: "RESERVED" }), " Reserved seats (a seat map, drawn once the event is created)") : null,
    ),
    h("h2", {}, "Ticket types"),
    types,
    h("div", { class: "actions" }, addType, submit),
    box,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = values(form);
    const body = {
      title: data.title,
      date: fromLocalInput(data.date),
      location: data.location,
      totalTickets: Number(data.totalTickets),
      currency: data.currency,
      seating: data.seating,
      ticketTypes: [...types.children].map((_, i) => ({
        name: data[`ticketTypes.${i}.name`],
        price: data[`ticketTypes.${i}.price`],
        quantity: Number(data[`ticketTypes.${i}.quantity`] || data.totalTickets),
      })),
    };
    if (data.description) body.description = data.description;
    if (!body.ticketTypes.length) delete body.ticketTypes;
    let event = await run(submit, box, () => api.post("/api/events", body), { form });
    // The network may have lost the answer, not the request: an event of ours with this
    // title, place and time is the one just made, and sending it again would make a second.
    if (!event && box.dataset.code === "network") event = await madeAlready(body);
    if (event) {
      notice(`Event created: ${event.title}.`);
      go(`#/manage/${event.id}`, submit);
    }
  });
  view.add(form);
}

/** The organizer's event with `body`'s title, location and date, if there is one (null if it cannot be asked). */
async function madeAlready(body) {
  const at = encodeURIComponent(body.date);
  try {
    const mine = await api.list(`/api/events?organizerId=${api.currentUser().id}&from=${at}&to=${at}&perPage=100`);
    return mine.items.find((e) => e.title === body.title && e.location === body.location) || null;
  } catch {
    return null;
  }
}

const TABS = [
  ["details", "Details", null],
  ["types", "Ticket types", null],
  ["seats", "Seat map", "seats"],
  ["attendees", "Attendees", null],
  ["stats", "Figures", "stats"],
  ["check-in", "Check-in", "checkin"],
  ["waitlist", "Waiting list", "waitlist"],
];

export async function event(view, [id, tab = "details"]) {
  const data = await api.get(`/api/events/${id}`);
  if (!view.alive()) return;
  view.title(data.title);
  if (!manages(data)) {
    // Another organizer's event: the API would refuse every tab; say so once, and lead to its public page.
    view.add(h("p", { class: "card" }, "Only the event's organizer or an admin may manage this event. ", h("a", { href: `#/events/${data.id}` }, "See its public page.")));
    return;
  }
  const tabs = TABS.filter(([name, , feature]) => (!feature || has(feature)) && (name !== "seats" || data.seating === "RESERVED"));
  view.add(
    h("p", { class: "meta" }, h("time", { datetime: data.date }, when(data.date)), ` · ${data.location} · ${data.status === "CANCELLED" ? "Cancelled" : "Scheduled"} · `, h("a", { href: `#/events/${data.id}` }, "public page")),
    h(
      "nav",
      { class: "tabs", "aria-label": "Event management" },
      h("ul", {}, tabs.map(([name, label]) => h("li", {}, h("a", { href: `#/manage/${data.id}/${name}`, "aria-current": name === tab ? "page" : null }, label)))),
    ),
  );
  const show = { details, types, seats: (v, e) => seatsTab(v, e), attendees, stats, "check-in": checkIn, waitlist: waitlistTab }[tab];
  if (!show || !tabs.some(([name]) => name === tab)) {
    view.add(h("p", {}, "There is no such part of this event."));
    return;
  }
  await show(view, data);
}

// Why an event can no longer be changed (the API answers 409 event_closed), or null.
function closedReason(event) {
  if (event.status === "CANCELLED") return "This event is cancelled: it can no longer be changed.";
  if (Date.parse(event.date) <= api.serverNow()) return "This event has started: it can no longer be changed.";
  return null;
}

function closedNote(view, event) {
  const reason = closedReason(event);
  if (reason) view.add(h("p", { class: "card notice-box" }, reason));
  return reason;
}

function details(view, event) {
  const submit = h("button", { type: "submit" }, "Save changes");
  const box = errorBox();
  const form = h("form", { class: "card", novalidate: true }, h("h2", {}, "Details"), eventFields(event), h("div", { class: "actions" }, submit), box);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const data = values(form);
    const changed = {};
    if (data.title !== event.title) changed.title = data.title;
    if (data.description !== (event.description || "")) changed.description = data.description || null;
    if (data.date !== toLocalInput(event.date)) changed.date = fromLocalInput(data.date);
    if (data.location !== event.location) changed.location = data.location;
    if (Number(data.totalTickets) !== event.totalTickets) changed.totalTickets = Number(data.totalTickets);
    if (!Object.keys(changed).length) {
      box.textContent = "Nothing has changed.";
      box.hidden = false;
      return;
    }
    const saved = await run(submit, box, () => api.patch(`/api/events/${event.id}`, changed), { form, codeFields: { capacity_below_sold: "totalTickets" } });
    if (saved) {
      notice("Changes saved; attendees are told of a new title, date or location.");
      go(`#/manage/${event.id}/details`, submit);
    }
  });
  const closed = closedNote(view, event);
  view.add(closed ? lock(form) : form);

  if (!closed) {
    const ask = h("button", { type: "button", class: "danger" }, "Cancel this event");
    const yes = h("button", { type: "button", class: "danger", hidden: true }, "Yes, cancel it and every booking");
    const cancelBox = errorBox();
    ask.addEventListener("click", () => {
      yes.hidden = false;
      yes.focus();
    });
    yes.addEventListener("click", async () => {
      const done = await run(yes, cancelBox, async () => (await api.del(`/api/events/${event.id}`), true));
      if (done) {
        notice(`${event.title} is cancelled; its attendees are told.`);
        go("#/manage", yes);
      }
    });
    view.add(h("section", { class: "card" }, h("h2", {}, "Cancel the event"), h("p", {}, "Every booking is cancelled and every attendee gets an email. An event nobody booked is removed."), h("div", { class: "actions" }, ask, yes), cancelBox));
  }
}

function types(view, event) {
  const closed = closedNote(view, event);
  for (const type of event.ticketTypes) view.add(closed ? lock(typeForm(event, type)) : typeForm(event, type));
  if (!closed) view.add(typeForm(event, null));
}

function typeForm(event, type) {
  // a page of several types: each Save and Delete is named by its type too ("Save Balcony")
  const submit = h("button", { type: "submit", "aria-label": type ? `Save ${type.name}` : null }, type ? "Save" : "Add ticket type");
  const box = errorBox();
  const done = h("p", { role: "status", class: "done" });
  const form = h(
    "form",
    { class: "card type", novalidate: true },
    h("h2", {}, type ? type.name : "New ticket type"),
    type ? h("p", {}, `${type.availableQuantity} of ${type.quantity} left`) : null,
    field("Name", input("name", { value: type ? type.name : "", required: true })),
    field("Price", input("price", { value: type ? type.price : "", inputmode: "decimal", required: true }), `in ${event.currency}, e.g. 25.00`),
    field("Quantity", input("quantity", { type: "number", min: type ? "0" : "1", value: type ? String(type.quantity) : "", required: true }), type ? "0 takes it off sale" : null),
    field("On sale from (optional)", input("salesStart", { type: "datetime-local", value: toLocalInput(type && type.salesStart) })),
    field("On sale until (optional)", input("salesEnd", { type: "datetime-local", value: toLocalInput(type && type.salesEnd) })),
    h("div", { class: "actions" }, submit, type ? deleteType(event, type, box) : null),
    box,
    done,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    done.textContent = "";
    const data = values(form);
    const body = {
      name: data.name,
      price: data.price,
      quantity: Number(data.quantity),
      salesStart: fromLocalInput(data.salesStart),
      salesEnd: fromLocalInput(data.salesEnd),
    };
    if (type) {
      // only what changed: the API refuses nothing it was sent unchanged, but a PATCH says what moved
      for (const key of ["name", "price", "quantity"]) if (String(body[key]) === String(type[key])) delete body[key];
      if (data.salesStart === toLocalInput(type.salesStart)) delete body.salesStart;
      if (data.salesEnd === toLocalInput(type.salesEnd)) delete body.salesEnd;
    } else {
      if (!body.salesStart) delete body.salesStart;
      if (!body.salesEnd) delete body.salesEnd;
    }
    const path = type ? `/api/events/${event.id}/ticket-types/${type.id}` : `/api/events/${event.id}/ticket-types`;
    const saved = await run(submit, box, () => (type ? api.patch(path, body) : api.post(path, body)), { form, codeFields: { capacity_below_sold: "quantity" } });
    if (saved) {
      notice(type ? `${saved.name} saved.` : `${saved.name} added.`);
      go(`#/manage/${event.id}/types`, submit);
    }
  });
  return form;
}

function deleteType(event, type, box) {
  const ask = h("button", { type: "button", class: "danger", "aria-label": `Delete ${type.name}` }, "Delete");
  const yes = h("button", { type: "button", class: "danger" }, `Yes, delete ${type.name}`);
  const no = h("button", { type: "button", class: "secondary", "aria-label": `Keep it: ${type.name}` }, "Keep it");
  yes.addEventListener("click", async () => {
    const done = await run(yes, box, async () => (await api.del(`/api/events/${event.id}/ticket-types/${type.id}`), true));
    if (done) {
      notice(`${type.name} deleted.`);
      go(`#/manage/${event.id}/types`, yes);
    }
  });
  return askFirst(ask, `Delete ${type.name}? `, yes, no);
}

async function seatsTab(view, event) {
  const editor = await seatEditor(view, event);
  if (!view.alive()) return;
  view.add(closedNote(view, event) ? lock(editor) : editor);
}

async function attendees(view, event) {
  const page = pageOfHash();
  if (has("csv")) view.add(csvButton(event));
  const result = await api.list(`/api/events/${event.id}/bookings?page=${page}&perPage=25`);
  if (!view.alive()) return;
  if (!result.items.length) {
    view.add(h("p", {}, "Nobody has booked yet."));
    return;
  }
  const types = new Map(event.ticketTypes.map((t) => [t.id, t.name]));
  view.add(
    cards(h(
      "table",
      { class: "list attendees" },
      h("caption", {}, plural(result.total, "booking")),
      h("thead", {}, h("tr", {}, ["Attendee", "Email", "Tickets", "Total", "Status", "Booked"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        result.items.map((booking) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, booking.user.name || "—"),
            h("td", {}, booking.user.email),
            h("td", {}, [...booking.items.map((i) => `${i.count} × ${types.get(i.ticketTypeId) || "ticket"}`), ...booking.seats.map(seatName)].join(", ")),
            h("td", {}, money(booking.totalAmount, booking.currency)),
            h("td", {}, booking.status === "CONFIRMED" ? "Confirmed" : "Cancelled"),
            h("td", {}, when(booking.createdAt)),
          ),
        ),
      ),
    )),
  );
  view.add(pager(result, page, (n) => `#/manage/${event.id}/attendees?page=${n}`));
}

function csvButton(event) {
  const button = h("button", { type: "button", class: "secondary" }, "Download attendees (CSV)");
  const box = errorBox();
  button.addEventListener("click", async () => {
    // The CSV needs the access token, which a plain link cannot send: fetch it, save the blob.
    const blob = await run(button, box, () => api.request("GET", `/api/events/${event.id}/attendees.csv`, { as: "blob", headers: { Accept: "text/csv" } }));
    if (!blob) return;
    const url = URL.createObjectURL(blob);
    const a = h("a", { href: url, download: `event-${event.id}-attendees.csv`, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  });
  return h("div", { class: "actions" }, button, box);
}

async function stats(view, event) {
  const figures = await api.get(`/api/events/${event.id}/stats`);
  if (!view.alive()) return;
  const pairs = [
    ["Capacity", figures.capacity],
    ["Sold", figures.sold],
    ["Held", figures.held],
    ["Set aside for the waiting list", figures.setAside],
    ["Available", figures.available],
    ["Checked in", figures.checkedIn],
    ["Waiting", figures.waiting],
    ["Revenue", money(figures.revenue, figures.currency)],
  ];
  view.add(
    h("dl", { class: "facts figures" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, String(v))])),
    cards(h(
      "table",
      { class: "list" },
      h("caption", {}, "By ticket type"),
      h("thead", {}, h("tr", {}, ["Type", "Sold", "Held", "Available", "Checked in", "Revenue"].map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        figures.byType.map((t) =>
          h("tr", {}, h("th", { scope: "row" }, t.name), ...[t.sold, t.held, t.available, t.checkedIn].map((n) => h("td", {}, String(n))), h("td", {}, money(t.revenue, figures.currency))),
        ),
      ),
    )),
  );
}

function checkIn(view, event) {
  const code = input("code", { autocomplete: "off", autocapitalize: "off", spellcheck: "false", required: true });
  const submit = h("button", { type: "submit" }, "Check in");
  const box = errorBox();
  const result = h("div", { class: "check-result", role: "status" });
  // Undo and its errors: beside the status, not in it, which is read out whole when it changes.
  const undoing = h("div", { class: "check-undo" });
  // One nonce per code until the server answers: a scan sent again after a lost answer
  // (the network failed, not the server) gets the first answer, not "already checked in".
  const unanswered = new Map();
  const form = h("form", { class: "card", novalidate: true }, field("Ticket code", code, "type it, paste it, or scan it into this field"), h("div", { class: "actions" }, submit), box, result, undoing);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    result.replaceChildren();
    undoing.replaceChildren();
    // A code copied from the CSV may keep the apostrophe that stops spreadsheets running it.
    const text = code.value.trim().replace(/^'/, "");
    if (!text) {
      clearErrors(form, box);
      box.textContent = "Type or paste a ticket's code.";
      box.hidden = false;
      return;
    }
    if (!unanswered.has(text)) unanswered.set(text, api.randomKey());
    const answer = await run(submit, box, () => api.post(`/api/events/${event.id}/check-ins`, { code: text, nonce: unanswered.get(text) }), { form, codeFields: { already_checked_in: "code", ticket_void: "code", not_found: "code" } });
    if (answer || (box.dataset.code && box.dataset.code !== "network")) unanswered.delete(text); // answered: the next scan of it is a new one
    if (!answer) return;
    const undo = h("button", { type: "button", class: "secondary" }, "Undo");
    const undoBox = errorBox();
    undo.addEventListener("click", async () => {
      const done = await run(undo, undoBox, async () => (await api.del(`/api/events/${event.id}/check-ins/${answer.ticket.id}`), true));
      if (!done) return;
      result.replaceChildren(h("p", {}, "Check-in undone."));
      // The button goes, with the focus: back to the field, where the next scan goes.
      code.focus();
      undoing.replaceChildren();
    });
    const ticket = answer.ticket;
    const type = event.ticketTypes.find((t) => t.id === ticket.ticketTypeId);
    const what = [type ? type.name : null, ticket.seat ? seatName(ticket.seat) : null].filter(Boolean).join(", ");
    result.append(h("p", { class: "ok" }, `Welcome in: ticket ${ticket.id}${what ? ` (${what})` : ""}, checked in ${when(answer.checkedInAt)}.`));
    undoing.append(undo, undoBox);
    code.value = "";
    code.focus();
  });
  view.add(form);
  view.focusTarget = code; // at the door, the next scan goes straight into the field
}

/** The `?page=` of the view's address (#/manage/1/attendees?page=2), 1 when none. */
function pageOfHash() {
  return Math.max(1, Number(new URLSearchParams(location.hash.split("?")[1] || "").get("page")) || 1);
}

async function waitlistTab(view, event) {
  const page = pageOfHash();
  const result = await api.list(`/api/events/${event.id}/waitlist?page=${page}&perPage=25`);
  if (!view.alive()) return;
  if (!result.items.length) {
    view.add(h("p", {}, result.total ? `There is no page ${page}.` : "Nobody is waiting."));
    return;
  }
  // The type each customer waits for, when there is a choice of them.
  const types = event.ticketTypes.length > 1 ? new Map(event.ticketTypes.map((t) => [t.id, t.name])) : null;
  const columns = ["#", "Customer", "Tickets", types ? "Type" : null, "Status", "Since"].filter(Boolean);
  view.add(
    cards(h(
      "table",
      { class: "list" },
      h("caption", {}, plural(result.total, "entry", "entries")),
      h("thead", {}, h("tr", {}, columns.map((t) => h("th", { scope: "col" }, t)))),
      h(
        "tbody",
        {},
        result.items.map((entry) =>
          h(
            "tr",
            {},
            // The place in line is the API's: only WAITING entries have one (not a row's number).
            h("td", {}, entry.position === null ? "—" : String(entry.position)),
            h("th", { scope: "row" }, entry.user.email),
            h("td", {}, String(entry.ticketsCount)),
            types ? h("td", {}, types.get(entry.ticketTypeId) || "—") : null,
            h("td", {}, entry.status.toLowerCase()),
            h("td", {}, when(entry.createdAt)),
          ),
        ),
      ),
    )),
  );
  view.add(pager(result, page, (n) => `#/manage/${event.id}/waitlist?page=${n}`));
}
