// Seat maps: the customer's picker (one button per seat) and the organizer's editor
// (sections of rows of numbered seats, each section on a ticket type).

import * as api from "./api.js";
import { errorBox, field, h, input, lock, removeRow, select } from "./dom.js";
import { cents, fromCents, money, plural, seatName } from "./format.js";
import { run, sentences, values } from "./forms.js";

const MAX_SEATS = 10;

/** Seats grouped as [[section, [[row, [seat...]]...]]...], in map order. */
function group(seats) {
  const sections = new Map();
  for (const seat of seats) {
    if (!sections.has(seat.section)) sections.set(seat.section, new Map());
    const rows = sections.get(seat.section);
    if (!rows.has(seat.row)) rows.set(seat.row, []);
    rows.get(seat.row).push(seat);
  }
  return [...sections].map(([name, rows]) => [name, [...rows]]);
}

/**
 * One Tab stop per section of the map: the arrow keys move between its free seats
 * (left and right in a row, up and down to the nearest number of the next row with a
 * free seat), Home and End to a row's ends. Returns `reset`, to call when seats were
 * taken meanwhile (a taken seat cannot keep the focus).
 */
function seatGrid(section) {
  const rows = () => [...section.querySelectorAll(".seat-row")].map((row) => [...row.querySelectorAll(".seat:not(:disabled)")]).filter((row) => row.length);
  const stop = (button) => {
    for (const seat of section.querySelectorAll(".seat")) seat.tabIndex = -1;
    if (button) button.tabIndex = 0;
  };
  const reset = () => {
    const current = section.querySelector('.seat[tabindex="0"]:not(:disabled)');
    stop(current || section.querySelector(".seat:not(:disabled)"));
  };
  section.addEventListener("focusin", (e) => {
    if (e.target.classList.contains("seat")) stop(e.target);
  });
  section.addEventListener("keydown", (e) => {
    if (!e.target.classList.contains("seat") || e.altKey || e.ctrlKey || e.metaKey || e.shiftKey) return;
    const grid = rows();
    const r = grid.findIndex((row) => row.includes(e.target));
    if (r < 0) return;
    const row = grid[r];
    const c = row.indexOf(e.target);
    const distance = (seat) => Math.abs(Number(seat.textContent) - Number(e.target.textContent)); // seat numbers apart
    const nearest = (other) => other.reduce((best, seat) => (distance(seat) < distance(best) ? seat : best));
    const next = {
      ArrowLeft: row[c - 1],
      ArrowRight: row[c + 1],
      ArrowUp: grid[r - 1] && nearest(grid[r - 1]),
      ArrowDown: grid[r + 1] && nearest(grid[r + 1]),
      Home: row[0],
      End: row[row.length - 1],
    };
    if (!(e.key in next)) return;
    e.preventDefault();
    if (next[e.key]) next[e.key].focus();
  });
  reset();
  return reset;
}

/** What the seats look like, in words: the samples are for the eye only (a screen reader
 * would read "1 free 1 taken 1 yours"). */
function legend() {
  const sample = (kind) => h("span", { class: `seat sample ${kind}`, "aria-hidden": "true" }, "1");
  return h("p", { class: "legend" }, sample(""), " free ", sample("taken"), " taken ", sample("chosen"), " yours");
}

/** `refused`: called after a conflict, to show the event's figures as they now are. */
export async function seatPicker(view, event, onHeld, refused) {
  const seats = await api.get(`/api/events/${event.id}/seats`);
  const prices = new Map(event.ticketTypes.map((t) => [t.id, t.price]));
  const chosen = new Map(); // seat id -> seat
  const summary = h("p", { class: "seat-summary", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Hold seats");
  const box = errorBox();
  const buttons = new Map();

  const update = () => {
    const total = [...chosen.values()].reduce((sum, seat) => sum + cents(prices.get(seat.ticketTypeId) || "0"), 0);
    summary.textContent = chosen.size
      ? `${plural(chosen.size, "seat")} chosen, ${money(fromCents(total), event.currency)}`
      : "No seats chosen yet.";
    submit.disabled = chosen.size === 0;
  };

  const seatButton = (seat) => {
    const free = seat.status === "AVAILABLE";
    const price = money(prices.get(seat.ticketTypeId) || "0", event.currency);
    const button = h(
      "button",
      {
        type: "button",
        class: `seat ${free ? "" : "taken"}`,
        "aria-pressed": "false",
        "aria-label": `${seatName(seat)}, ${free ? price : "taken"}`,
        disabled: !free,
      },
      String(seat.number),
    );
    button.addEventListener("click", () => {
      if (chosen.has(seat.id)) chosen.delete(seat.id);
      else if (chosen.size >= MAX_SEATS) {
        box.textContent = `At most ${MAX_SEATS} seats at a time.`;
        box.hidden = false;
        return;
      } else chosen.set(seat.id, seat);
      button.setAttribute("aria-pressed", String(chosen.has(seat.id)));
      box.hidden = true;
      update();
    });
    buttons.set(seat.id, button);
    return button;
  };

  const sections = group(seats);
  const maps = sections.map(([name, rows]) =>
    h(
      "fieldset",
      { class: "seat-section", "data-section": name },
      h("legend", {}, name),
      h("p", { class: "hint" }, "Arrow keys move between free seats; Space or Enter chooses one."),
      rows.map(([row, rowSeats]) => h("div", { class: "seat-row", role: "group", "aria-label": `Row ${row}` }, h("span", { class: "row-label", "aria-hidden": "true" }, row), rowSeats.map(seatButton))),
    ),
  );
  const resets = maps.map(seatGrid);
  // One section at a time on a big map, chosen from a list.
  let chooser = null;
  if (maps.length > 1) {
    const pick = select("section", sections.map(([name]) => [name, name]));
    const show = () => maps.forEach((map, i) => (map.hidden = sections[i][0] !== pick.value));
    pick.addEventListener("change", show);
    show();
    chooser = field("Section", pick);
  }

  const form = h(
    "form",
    { class: "card buy seats", novalidate: true },
    h("h2", {}, "Choose seats"),
    seats.length ? legend() : h("p", {}, "This event has no seat map yet."),
    chooser,
    maps,
    summary,
    h("div", { class: "actions" }, submit),
    box,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const hold = await run(submit, box, () => api.post("/api/holds", { eventId: event.id, seatIds: [...chosen.keys()] }));
    if (hold) onHeld(hold, submit);
    else if (box.textContent) {
      // Seats someone else took meanwhile: mark them taken and drop them from the choice;
      // the tickets left (in all, by type) shown above the map changed with them.
      const [lost] = await Promise.all([markTaken(event, buttons, chosen), box.dataset.status === "409" ? refused() : null]);
      resets.forEach((reset) => reset());
      if (lost.length) box.textContent = sentences(box.textContent, `Taken meanwhile: ${lost.map(seatName).join("; ")}.`);
      update();
    }
  });
  update();
  return form;
}

/** Mark the seats no longer free as taken; returns those that were chosen. */
async function markTaken(event, buttons, chosen) {
  const lost = [];
  try {
    const seats = await api.get(`/api/events/${event.id}/seats`);
    for (const seat of seats) {
      const button = buttons.get(seat.id);
      if (!button || seat.status === "AVAILABLE" || button.disabled) continue;
      if (chosen.delete(seat.id)) lost.push(seat);
      button.disabled = true;
      button.classList.add("taken");
      button.setAttribute("aria-pressed", "false");
      button.setAttribute("aria-label", `${seatName(seat)}, taken`);
    }
  } catch {
    // the error already shown says what happened
  }
  return lost;
}

// A row written with its own seat numbers, "D 3-8": its label, first and last number.
const OWN_RANGE = /^(.*\S)\s+(\d+)\s*-\s*(\d+)$/;

// The Rows field lists labels separated by commas; a label with a comma or a double
// quote of its own is written in double quotes, its quotes doubled: "Box ""A"", 1".
const quoted = (label) => (/[,"]/.test(label) ? `"${label.replaceAll('"', '""')}"` : label);

/** The entries of a Rows field, quotes read: ["A", "Box 1,2 3-8", ...]. */
function entries(text) {
  const out = [""];
  let inQuotes = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (c === '"' && inQuotes && text[i + 1] === '"') {
      out[out.length - 1] += c;
      i += 1;
    } else if (c === '"') inQuotes = !inQuotes;
    else if (c === "," && !inQuotes) out.push("");
    else out[out.length - 1] += c;
  }
  return out.map((entry) => entry.trim()).filter(Boolean);
}

// A row's runs of consecutive numbers, [first, last] each: two or more when it has an aisle.
function runs(rowSeats) {
  const numbers = rowSeats.map((s) => s.number).sort((a, b) => a - b);
  const out = [];
  for (const n of numbers) {
    const last = out[out.length - 1];
    if (last && n === last[1] + 1) last[1] = n;
    else out.push([n, n]);
  }
  return out;
}

/** The organizer's seat map editor. */
export async function seatEditor(view, event) {
  const seats = await api.get(`/api/events/${event.id}/seats`);
  const typeOptions = event.ticketTypes.map((t) => [t.id, `${t.name} (${money(t.price, event.currency)})`]);
  const list = h("div", { class: "sections" });
  // After a section is removed, the others are numbered by their place again, their
  // controls too: a server's error names a section by its place ("sections.2.name").
  const number = () =>
    [...list.children].forEach((set, i) => {
      set.querySelector("legend").textContent = `Section ${i + 1}`;
      set.querySelector("button").setAttribute("aria-label", `Remove section ${i + 1}`);
      for (const control of set.querySelectorAll("[name]")) control.name = control.name.replace(/^sections\.\d+\./, `sections.${i}.`);
    });
  const more = h("button", { type: "button", class: "secondary" }, "Add a section");
  const addSection = (section = { name: "", ticketTypeId: event.ticketTypes[0]?.id, rows: "", from: 1, to: 10 }) => {
    const index = list.children.length;
    const remove = h("button", { type: "button", class: "secondary", "aria-label": `Remove section ${index + 1}` }, "Remove section");
    const set = h(
      "fieldset",
      { class: "section-edit" },
      h("legend", {}, `Section ${index + 1}`),
      field("Name", input(`sections.${index}.name`, { value: section.name, required: true })),
      field("Ticket type", select(`sections.${index}.ticketTypeId`, typeOptions, { value: section.ticketTypeId })),
      field("Rows", input(`sections.${index}.rows`, { value: section.rows, required: true }), `row labels, separated by commas: A, B, C; a row of other seats: D 3-8; a label with a comma in quotes: "Box 1,2"`),
      field("First seat number", input(`sections.${index}.from`, { type: "number", min: "1", value: String(section.from) })),
      field("Last seat number", input(`sections.${index}.to`, { type: "number", min: "1", value: String(section.to) })),
      remove,
    );
    remove.addEventListener("click", () => {
      removeRow(set, more);
      number();
    });
    list.append(set);
  };
  // The current map, read back as sections: a row whose seats differ from the first row's
  // keeps its own numbers ("D 3-8"), so that saving it unchanged changes nothing.
  for (const [name, rows] of group(seats)) {
    const [[from, to]] = runs(rows[0][1]);
    addSection({
      name,
      ticketTypeId: rows[0][1][0].ticketTypeId,
      rows: rows
        .flatMap(([row, rowSeats]) => {
          const spans = runs(rowSeats);
          // A label that itself ends like a range ("Box 1-2") is written with its range, or saving would read it as one.
          const plain = spans.length === 1 && spans[0][0] === from && spans[0][1] === to && !OWN_RANGE.test(row);
          return plain ? [quoted(row)] : spans.map(([a, b]) => `${quoted(row)} ${a}-${b}`);
        })
        .join(", "),
      from,
      to,
    });
  }
  if (!seats.length) addSection();

  more.addEventListener("click", () => addSection());
  const submit = h("button", { type: "submit" }, "Save seat map");
  const box = errorBox();
  const done = h("p", { role: "status" });
  const size = (count) => (count ? `The map has ${plural(count, "seat")}. Saving replaces it (not possible once a seat is held or sold).` : "No seat map yet.");
  // Once a seat is held or sold the API refuses any new map: the map is shown, not edited.
  const inUse = seats.filter((seat) => seat.status !== "AVAILABLE").length;
  const state = h(
    "p",
    {},
    inUse ? `The map has ${plural(seats.length, "seat")}, ${inUse} of them held or sold: it can no longer change.` : size(seats.length),
  );
  const form = h(
    "form",
    { class: "card", novalidate: true },
    state,
    list,
    h("div", { class: "actions" }, more, submit),
    box,
    done,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    done.textContent = "";
    const data = values(form);
    const sections = [...list.children].map((set) => {
      const i = set.querySelector("input").name.split(".")[1];
      return {
        name: data[`sections.${i}.name`],
        ticketTypeId: Number(data[`sections.${i}.ticketTypeId`]),
        rows: entries(data[`sections.${i}.rows`]).map((text) => {
          const own = OWN_RANGE.exec(text); // "D 3-8": a row with its own seat numbers
          if (own) return { label: own[1], from: Number(own[2]), to: Number(own[3]) };
          return { label: text, from: Number(data[`sections.${i}.from`]), to: Number(data[`sections.${i}.to`]) };
        }),
      };
    });
    const result = await run(submit, box, () => api.put(`/api/events/${event.id}/seats`, { sections }), { form });
    if (result) {
      state.textContent = size(result.seats);
      done.textContent = `Saved: ${plural(result.seats, "seat")}.`;
    }
  });
  return inUse ? lock(form) : form;
}
