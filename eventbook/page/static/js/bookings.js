// A customer's bookings; one booking with its tickets and their QR codes; cancelling.

import * as api from "./api.js";
import { askFirst, errorBox, h } from "./dom.js";
import { go, has, notice } from "./context.js";
import { money, plural, seatName, when } from "./format.js";
import { run } from "./forms.js";
import { pager } from "./events.js";

const PER_PAGE = 10;

export async function list(view, _params, query) {
  const page = Math.max(1, Number(query.get("page")) || 1);
  view.title("My bookings");
  const result = await api.list(`/api/bookings/my-bookings?page=${page}&perPage=${PER_PAGE}`);
  if (!view.alive()) return;
  if (!result.items.length) {
    view.add(h("p", {}, "No bookings yet. ", h("a", { href: "#/" }, "Find an event.")));
    return;
  }
  view.add(
    h(
      "ul",
      { class: "cards bookings" },
      result.items.map((booking) =>
        h(
          "li",
          { class: `card booking ${booking.status.toLowerCase()}` },
          h("h2", {}, h("a", { href: `#/bookings/${booking.id}` }, booking.event.title)),
          h("p", { class: "meta" }, h("time", { datetime: booking.event.date }, when(booking.event.date)), ` · ${booking.event.location}`),
          h("p", {}, `${plural(booking.ticketsCount, "ticket")}, ${money(booking.totalAmount, booking.currency)} · `, h("span", { class: "status" }, statusText(booking))),
          h("div", { class: "actions" }, h("a", { class: "button secondary", href: `#/bookings/${booking.id}` }, has("tickets") ? "Tickets" : "Details"), booking.status === "CONFIRMED" ? cancelButton(booking, (from) => go(location.hash, from)) : null),
        ),
      ),
    ),
  );
  view.add(pager(result, page, (n) => `#/bookings?page=${n}`));
}

function statusText(booking) {
  return booking.status === "CONFIRMED" ? "Confirmed" : `Cancelled ${when(booking.cancelledAt)}`;
}

/** "Cancel booking", then a second button to be sure, with the error beside them. */
function cancelButton(booking, after) {
  const ask = h("button", { type: "button", class: "danger" }, "Cancel booking");
  const yes = h("button", { type: "button", class: "danger" }, "Yes, cancel it");
  const no = h("button", { type: "button", class: "secondary" }, "Keep it");
  const box = errorBox();
  yes.addEventListener("click", async () => {
    const done = await run(yes, box, () => api.post(`/api/bookings/${booking.id}/cancel`));
    if (done) {
      notice(`Booking cancelled: ${booking.event.title}.`);
      after(yes);
    }
  });
  const step = askFirst(ask, "Cancel this booking? ", yes, no);
  step.append(box);
  return step;
}

export async function detail(view, [id]) {
  const booking = await api.get(`/api/bookings/${id}`);
  if (!view.alive()) return;
  const event = booking.event;
  view.title(`Booking for ${event.title}`);
  const types = new Map(event.ticketTypes.map((t) => [t.id, t.name]));
  view.add(
    h("p", { class: "meta" }, h("time", { datetime: event.date }, when(event.date)), ` · ${event.location} · `, h("a", { href: `#/events/${event.id}` }, "the event")),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Status"),
      h("dd", { class: "status" }, statusText(booking)),
      h("dt", {}, "Tickets"),
      h("dd", {}, booking.items.map((item) => `${item.count} × ${types.get(item.ticketTypeId) || "ticket"} at ${money(item.price, booking.currency)}`).join(", ")),
      h("dt", {}, "Total"),
      h("dd", {}, money(booking.totalAmount, booking.currency)),
      h("dt", {}, "Booked"),
      h("dd", {}, when(booking.createdAt)),
    ),
  );
  const user = api.currentUser();
  const items = booking.status === "CONFIRMED" && has("tickets") ? await api.get(`/api/bookings/${booking.id}/tickets`) : null;
  if (!view.alive()) return;
  if (booking.status === "CONFIRMED" && user.role === "CUSTOMER") {
    // Once a ticket is checked in the API refuses a cancel (its holder is inside): said, not offered.
    if (items?.some((ticket) => ticket.checkedInAt)) view.add(h("p", { class: "hint" }, "A ticket of this booking has been checked in, so it cannot be cancelled."));
    else view.add(h("div", { class: "actions" }, cancelButton(booking, (from) => go(`#/bookings/${booking.id}`, from))));
  }
  if (items) tickets(view, booking, types, items);
}

function tickets(view, booking, types, items) {
  const urls = [];
  view.onLeave(() => urls.forEach((url) => URL.revokeObjectURL(url)));
  const cards = items.map((ticket, i) => {
    const img = h("img", { class: "qr", alt: `QR code of ticket ${i + 1}`, width: "164", height: "164" });
    const box = errorBox();
    // The QR endpoint needs the access token, which an <img src> cannot send: fetch it, show the blob.
    api
      .request("GET", `/api/bookings/${booking.id}/tickets/${ticket.id}/qr`, { as: "blob", headers: { Accept: "image/svg+xml" } })
      .then((blob) => {
        const url = URL.createObjectURL(blob);
        urls.push(url);
        if (view.alive()) img.src = url;
        else URL.revokeObjectURL(url);
      })
      .catch((error) => {
        box.textContent = `The QR code could not be loaded: ${error.message}`;
        box.hidden = false;
      });
    return h(
      "li",
      { class: "card ticket" },
      img,
      box,
      h(
        "div",
        {},
        h("h3", {}, `Ticket ${i + 1}: ${types.get(ticket.ticketTypeId) || "ticket"}`),
        ticket.seat ? h("p", {}, seatName(ticket.seat)) : null,
        h("p", {}, "Code: ", h("code", { class: "code" }, ticket.code)),
        h("p", {}, ticket.checkedInAt ? `Checked in ${when(ticket.checkedInAt)}` : "Not checked in yet"),
      ),
    );
  });
  view.add(h("h2", {}, "Your tickets"), h("ul", { class: "tickets" }, cards));
}
