// For everyone: the events, one event; for customers: choosing tickets or seats, the
// hold and its countdown, the waiting list.

import * as api from "./api.js";
import { cards, errorBox, field, h, input, select } from "./dom.js";
import { forgetHold, go, has, isCustomer, manages, notice, rememberHold, rememberedHold } from "./context.js";
import { cents, clock, fromCents, money, plural, seatName, when } from "./format.js";
import { run, values } from "./forms.js";
import { seatPicker } from "./seats.js";

const PER_PAGE = 12;
const MAX_TICKETS = 10;

function priceRange(event) {
  const prices = event.ticketTypes.map((t) => cents(t.price));
  if (!prices.length) return "";
  const low = Math.min(...prices);
  const high = Math.max(...prices);
  if (high === 0) return "Free";
  const from = money(fromCents(low), event.currency);
  return low === high ? from : `From ${from}`;
}

/** A type's tickets a customer can have now: its own remainder, within the event's free
 * tickets (which tickets set aside for the waiting list, or taken as another type, reduce). */
function ticketsLeft(event, type) {
  return Math.min(type.availableQuantity, event.availableTickets);
}

function availability(event) {
  if (event.status === "CANCELLED") return "Cancelled";
  if (event.availableTickets === 0) return "Sold out";
  return `${event.availableTickets} of ${plural(event.totalTickets, "ticket")} left`;
}

export async function list(view, _params, query) {
  const q = query.get("q") || "";
  const page = Math.max(1, Number(query.get("page")) || 1);
  view.title(q ? `Events matching “${q}”` : "Upcoming events");

  const search = input("q", { type: "search", value: q, autocomplete: "off" });
  const form = h("form", { class: "search", role: "search" }, field("Search events", search), h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = search.value.trim();
    go(text ? `#/?q=${encodeURIComponent(text)}` : "#/");
  });
  view.add(form);

  const params = new URLSearchParams({ page: String(page), perPage: String(PER_PAGE) });
  if (q) params.set("q", q);
  const result = await api.list(`/api/events?${params}`);
  if (!view.alive()) return;

  view.add(h("p", { class: "count", role: "status" }, result.total ? plural(result.total, "event") : "No events found."));
  if (result.total && !result.items.length) {
    const first = `#/?${new URLSearchParams({ ...(q ? { q } : {}), page: "1" })}`;
    view.add(h("p", {}, `There is no page ${page}. `, h("a", { href: first }, "Go to the first page.")));
    return;
  }
  view.add(
    h(
      "ul",
      { class: "cards" },
      result.items.map((event) =>
        h(
          "li",
          { class: "card event" },
          h("h2", {}, h("a", { href: `#/events/${event.id}` }, event.title)),
          h("p", { class: "meta" }, h("time", { datetime: event.date }, when(event.date)), ` · ${event.location}`),
          h("p", { class: "price" }, priceRange(event)),
          h("p", { class: event.availableTickets === 0 ? "left none" : "left" }, availability(event)),
        ),
      ),
    ),
  );
  view.add(pager(result, page, (n) => `#/?${new URLSearchParams({ ...(q ? { q } : {}), page: String(n) })}`));
}

export function pager(result, page, href) {
  if (!result.prev && !result.next) return null;
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    result.prev ? h("a", { href: href(page - 1), rel: "prev" }, "← Previous") : null,
    h("span", {}, `Page ${page}`),
    result.next ? h("a", { href: href(page + 1), rel: "next" }, "Next →") : null,
  );
}

export async function detail(view, [id]) {
  const event = await api.get(`/api/events/${id}`);
  if (!view.alive()) return;
  view.title(event.title);
  const shown = figures(event);
  view.add(
    h("p", { class: "meta" }, h("time", { datetime: event.date }, when(event.date)), ` · ${event.location}`),
    event.description ? h("p", { class: "description" }, event.description) : null,
    shown.line,
  );
  if (manages(event)) view.add(h("p", {}, h("a", { class: "button", href: `#/manage/${event.id}` }, "Manage this event")));
  if (event.status === "CANCELLED") {
    view.add(h("p", { class: "card" }, "This event is cancelled: nothing is on sale."));
    return;
  }
  view.add(shown.table);
  if (!api.currentUser()) {
    view.add(h("p", { class: "card" }, h("a", { href: `#/login?next=${encodeURIComponent(`/events/${event.id}`)}` }, "Log in"), " as a customer to book tickets."));
    return;
  }
  if (!isCustomer()) return;

  const booking = await bookedAlready(event);
  if (!view.alive()) return;
  if (booking) {
    view.add(h("p", { class: "card notice-box" }, `You booked ${plural(booking.ticketsCount, "ticket")} for this event (one booking per customer). `, h("a", { href: `#/bookings/${booking.id}` }, "See your booking.")));
    return;
  }
  await heldAlready(view, event);
  if (event.seating === "RESERVED") {
    if (has("seats")) view.add(await seatPicker(view, event, (hold, from) => held(event, hold, from), shown.reload));
    else view.add(h("p", {}, "Seats for this event cannot be chosen on this page yet."));
    return; // no waiting list: seats come back to the map
  }
  const entry = has("waitlist") ? await waitlistEntry(event) : null;
  if (!view.alive()) return;
  view.add(ticketForm(event, entry, shown.reload));
  if (has("waitlist")) waitlist(view, event, entry);
}

/**
 * The event's figures as the page shows them (tickets left in all, and by type), and
 * `reload`, to read them again after a refusal: a conflict means others took tickets
 * or seats meanwhile, and the figures shown are no longer right.
 */
function figures(event) {
  const line = h("p", { class: "left" }, availability(event));
  let table = typesTable(event);
  const reload = async () => {
    let now;
    try {
      now = await api.get(`/api/events/${event.id}`);
    } catch {
      return; // the error shown already says what happened
    }
    line.textContent = availability(now);
    const fresh = typesTable(now);
    table.replaceWith(fresh);
    table = fresh;
  };
  return { line, table, reload }; // `table` as first shown: put on the page once
}

/** A list table like the others: on a narrow screen its four columns would break words
 * ("Pri-ce") where a card per type does not. */
function typesTable(event) {
  return cards(h(
    "table",
    { class: "list types" },
    h("caption", {}, "Tickets"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Type"), h("th", { scope: "col" }, "Price"), h("th", { scope: "col" }, "Left"), h("th", { scope: "col" }, "On sale"))),
    h(
      "tbody",
      {},
      event.ticketTypes.map((type) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, type.name),
          h("td", {}, money(type.price, event.currency)),
          h("td", {}, ticketsLeft(event, type) === 0 ? "Sold out" : String(ticketsLeft(event, type))),
          h("td", {}, salesWindow(type)),
        ),
      ),
    ),
  ));
}

function salesWindow(type) {
  if (type.salesStart && type.salesEnd) return `${when(type.salesStart)} – ${when(type.salesEnd)}`;
  if (type.salesStart) return `from ${when(type.salesStart)}`;
  if (type.salesEnd) return `until ${when(type.salesEnd)}`;
  return "now";
}

function held(event, hold, from) {
  rememberHold(event.id, hold.id);
  if (!from.isConnected) notice(`Tickets held for ${event.title}: its page leads to them.`); // the customer went elsewhere meanwhile
  go(`#/holds/${hold.id}`, from);
}

/** The customer's CONFIRMED booking of this event: their newest of it, since a customer
 * has one confirmed booking of an event at most, and books it again only once that one
 * is cancelled. */
async function bookedAlready(event) {
  const newest = (await api.list(`/api/bookings/my-bookings?eventId=${event.id}&perPage=1`)).items[0];
  return newest && newest.status === "CONFIRMED" ? newest : null;
}

/** A hold of this event this tab took before, still HELD: lead back to it. */
async function heldAlready(view, event) {
  const holdId = rememberedHold(event.id);
  if (!holdId) return;
  let hold = null;
  try {
    hold = await api.get(`/api/holds/${holdId}`);
  } catch {
    forgetHold(event.id);
    return;
  }
  if (hold.status !== "HELD") {
    forgetHold(event.id);
    return;
  }
  if (view.alive()) {
    view.add(h("p", { class: "card notice-box" }, `You hold ${plural(hold.ticketsCount, "ticket")} for this event. `, h("a", { href: `#/holds/${hold.id}` }, "Confirm or release them.")));
  }
}

/** Whether a type's sales window is open at the server's time now. */
function inSalesWindow(type) {
  const now = api.serverNow();
  return (!type.salesStart || Date.parse(type.salesStart) <= now) && (!type.salesEnd || now < Date.parse(type.salesEnd));
}

/** Whether a type is on sale now: tickets left, inside its sales window. */
function onSaleNow(event, type) {
  return ticketsLeft(event, type) > 0 && inSalesWindow(type);
}

/** `entry`: the customer's place on the waiting list, or null; `refused`: called after a
 * conflict the page does not go elsewhere for. */
function ticketForm(event, entry, refused) {
  const onSale = event.ticketTypes.filter((type) => onSaleNow(event, type));
  if (!onSale.length) return h("p", { class: "card" }, "No tickets are on sale right now.");
  const total = h("output", { class: "total" }, money("0.00", event.currency));
  const counts = onSale.map((type) =>
    input(`count-${type.id}`, {
      type: "number",
      min: "0",
      max: String(Math.min(MAX_TICKETS, ticketsLeft(event, type))),
      value: onSale.length === 1 ? "1" : "0",
      inputmode: "numeric",
      "data-type": type.id,
      "data-price": type.price,
    }),
  );
  const update = () => {
    const sum = counts.reduce((acc, el) => acc + (Number(el.value) || 0) * cents(el.dataset.price), 0);
    total.textContent = money(fromCents(sum), event.currency);
  };
  counts.forEach((el) => el.addEventListener("input", update));
  update();
  const submit = h("button", { type: "submit" }, "Hold tickets");
  const box = errorBox();
  const form = h(
    "form",
    { class: "card buy", novalidate: true },
    h("h2", {}, "Choose tickets"),
    onSale.map((type, i) => field(`${type.name} (${money(type.price, event.currency)})`, counts[i])),
    h("p", {}, "Total: ", total),
    h("div", { class: "actions" }, submit),
    box,
    h("p", { class: "hint" }, "Held tickets are yours for a few minutes while you confirm."),
    // The API takes a customer who holds or books directly off the list (LEFT): say so before they do.
    entry && entry.status === "WAITING" ? h("p", { class: "hint" }, "You are on this event's waiting list: holding tickets here takes you off it.") : null,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const items = counts.map((el) => ({ ticketTypeId: Number(el.dataset.type), count: Number(el.value) || 0 })).filter((item) => item.count > 0);
    if (!items.length) {
      box.textContent = "Choose at least one ticket.";
      box.hidden = false;
      return;
    }
    // An item's errors (items.0.count) go next to its type's field.
    const fields = Object.fromEntries(items.map((item, i) => [`items.${i}.count`, `count-${item.ticketTypeId}`]));
    const hold = await run(submit, box, () => api.post("/api/holds", { eventId: event.id, items }), { form, fields });
    if (hold) held(event, hold, submit);
    else if (["not_enough_tickets", "sold_out"].includes(box.dataset.code)) {
      // Others took tickets meanwhile: show the event as it now is (and its waiting list), with the reason.
      notice(box.textContent);
      go(`#/events/${event.id}`, submit);
    } else if (box.dataset.status === "409") refused();
  });
  return form;
}

/** The customer's live entry (WAITING or OFFERED) on the event's waiting list, or null.
 * Asked on every visit (no entry: a 404): the customer may have joined in another tab or
 * browser, and an offer may come with tickets to spare, the event no longer sold out. */
async function waitlistEntry(event) {
  let entry = null;
  try {
    entry = await api.get(`/api/events/${event.id}/waitlist/me`);
  } catch (error) {
    if (error.status !== 404) throw error;
  }
  return entry && ["WAITING", "OFFERED"].includes(entry.status) ? entry : null;
}

function waitlist(view, event, entry) {
  // One may wait for a type whose sales are open (no offer is made outside them), and
  // only while fewer tickets are left than one may ask for (the API refuses a join for
  // no more than are left: tickets_available).
  const types = event.ticketTypes.filter((t) => inSalesWindow(t) && ticketsLeft(event, t) < MAX_TICKETS);
  const section = h("section", { class: "card waitlist", "aria-labelledby": "waitlist-title" }, h("h2", { id: "waitlist-title" }, "Waiting list"));
  if (!types.length && !entry) return;
  const box = errorBox();
  if (entry) {
    const leave = h("button", { type: "button", class: "secondary" }, "Leave the waiting list");
    section.append(
      h(
        "p",
        {},
        entry.status === "WAITING"
          ? `You are number ${entry.position} in line for ${plural(entry.ticketsCount, "ticket")}.`
          : "Tickets came back for you: ",
        entry.status === "OFFERED" && entry.holdId ? h("a", { href: `#/holds/${entry.holdId}` }, "confirm them before they go to the next in line.") : null,
      ),
      h("div", { class: "actions" }, leave),
      box,
    );
    leave.addEventListener("click", async () => {
      const done = await run(leave, box, async () => (await api.del(`/api/events/${event.id}/waitlist/me`), true));
      if (done) {
        notice("You left the waiting list.");
        go(`#/events/${event.id}`, leave);
      }
    });
  } else {
    // The type with the fewest tickets left first chosen: the one a customer waits for.
    const scarcest = types.reduce((a, b) => (ticketsLeft(event, b) < ticketsLeft(event, a) ? b : a));
    const typeSelect = types.length > 1 ? select("ticketTypeId", types.map((t) => [t.id, t.name]), { value: scarcest.id }) : null;
    const count = input("ticketsCount", { type: "number", max: String(MAX_TICKETS), inputmode: "numeric" });
    // One waits for more than are left (fewer could be booked now): the least one may ask
    // for follows the type chosen.
    const least = () => {
      const chosen = typeSelect ? types.find((t) => String(t.id) === typeSelect.value) : scarcest;
      const min = ticketsLeft(event, chosen) + 1;
      count.min = String(min);
      if (!(Number(count.value) >= min)) count.value = String(min);
    };
    if (typeSelect) typeSelect.addEventListener("change", least);
    least();
    const join = h("button", { type: "submit" }, "Join the waiting list");
    const form = h(
      "form",
      { novalidate: true },
      h("p", {}, "When tickets come back they are offered to the waiting list in order."),
      field("Tickets wanted", count),
      typeSelect ? field("Ticket type", typeSelect) : null,
      h("div", { class: "actions" }, join),
      box,
    );
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const data = values(form);
      const body = { ticketsCount: Number(data.ticketsCount) };
      if (typeSelect) body.ticketTypeId = Number(data.ticketTypeId);
      else if (types.length === 1 && event.ticketTypes.length > 1) body.ticketTypeId = types[0].id;
      const joined = await run(join, box, () => api.post(`/api/events/${event.id}/waitlist`, body), { form });
      if (joined) {
        notice(`You are on the waiting list, number ${joined.position}.`);
        go(`#/events/${event.id}`, join);
      } else if (box.dataset.code === "already_waiting") {
        // A join sent again after its answer was lost (or joined in another tab): show the entry.
        notice(box.textContent);
        go(`#/events/${event.id}`, join);
      }
    });
    section.append(form);
  }
  view.add(section);
}

// Idempotency-Key per hold: a confirm sent again (a retry, a double click) books once.
const confirmKeys = new Map();

export async function hold(view, [id]) {
  const holdData = await api.get(`/api/holds/${id}`);
  const event = await api.get(`/api/events/${holdData.eventId}`);
  if (!view.alive()) return;
  view.title(`Your tickets for ${event.title}`);
  const types = new Map(event.ticketTypes.map((t) => [t.id, t.name]));
  view.add(
    h("p", { class: "meta" }, h("time", { datetime: event.date }, when(event.date)), ` · ${event.location}`),
    h(
      "ul",
      { class: "items" },
      holdData.items.map((item) => h("li", {}, `${item.count} × ${types.get(item.ticketTypeId) || "ticket"} at ${money(item.price, holdData.currency)}`)),
      holdData.seats.map((seat) => h("li", {}, seatName(seat))),
    ),
    h("p", { class: "total-line" }, "Total: ", h("strong", {}, money(holdData.totalAmount, holdData.currency))),
  );

  if (holdData.status === "CONFIRMED" && holdData.bookingId) {
    view.add(h("p", {}, "This hold is confirmed. ", h("a", { href: `#/bookings/${holdData.bookingId}` }, "See the booking.")));
    return;
  }
  if (holdData.status !== "HELD") {
    forgetHold(event.id);
    view.add(h("p", {}, "These tickets are no longer held for you. ", h("a", { href: `#/events/${event.id}` }, "Back to the event.")));
    return;
  }

  const timer = h("span", { class: "countdown", role: "timer", "aria-live": "off" });
  // Focusable by script: where the focus goes when the hold ends under it (see `ended`).
  const status = h("p", { class: "timer-line", tabindex: "-1" }, "Time left to confirm: ", timer);
  const confirm = h("button", { type: "button" }, "Confirm booking");
  const release = h("button", { type: "button", class: "secondary" }, "Release tickets");
  const box = errorBox();
  // Shown, not for screen readers only: the eye too gets more warning than the clock.
  const warning = h("p", { class: "hold-warning", "aria-live": "polite" });
  view.add(status, warning, h("div", { class: "actions" }, confirm, release), box);

  const expires = Date.parse(holdData.expiresAt);
  const ended = () => {
    clearInterval(interval);
    // Disabling the button that has the focus would drop it to the page's start: it goes to the line that says why.
    const focused = [confirm, release].includes(document.activeElement);
    // Where its tickets went is not known here: to the next in line while anyone is on
    // the waiting list (a lapsed offer's tickets too), else back on sale.
    status.replaceChildren("This hold has expired and its tickets were given back. ", h("a", { href: `#/events/${event.id}` }, "Back to the event."));
    warning.textContent = "This hold has expired.";
    warning.className = "sr-only"; // to be read out; the line above shows it
    confirm.disabled = true;
    release.disabled = true;
    if (focused) status.focus();
    forgetHold(event.id);
  };
  const tick = (first = false) => {
    const left = (expires - api.serverNow()) / 1000;
    timer.textContent = clock(left);
    // From the interval's ticks only: a live region filled as it is put on the page (a
    // hold opened with under a minute left) is not read out.
    if (!first && left <= 60 && left > 0 && !warning.textContent) warning.textContent = "One minute left to confirm.";
    if (left <= 0) ended();
  };
  const interval = setInterval(tick, 1000);
  view.onLeave(() => clearInterval(interval));
  tick(true);

  confirm.addEventListener("click", async () => {
    if (!confirmKeys.has(holdData.id)) confirmKeys.set(holdData.id, api.randomKey());
    const booking = await run(confirm, box, () =>
      api.post(`/api/holds/${holdData.id}/confirm`, undefined, { headers: { "Idempotency-Key": confirmKeys.get(holdData.id) } }),
    );
    if (booking) {
      clearInterval(interval);
      forgetHold(event.id);
      notice(`Booking confirmed: ${plural(booking.ticketsCount, "ticket")} for ${event.title}.`);
      go(`#/bookings/${booking.id}`, confirm);
    } else if (box.dataset.code === "hold_expired") ended(); // the server's clock is the one that counts
  });
  release.addEventListener("click", async () => {
    const done = await run(release, box, async () => (await api.del(`/api/holds/${holdData.id}`), true));
    if (done) {
      clearInterval(interval);
      forgetHold(event.id);
      notice("The tickets were released.");
      go(`#/events/${event.id}`, release);
    }
  });
}
