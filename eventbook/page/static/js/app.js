// The page: a hash router over views, the navigation, and the session at load.

import * as api from "./api.js";
import { clear, errorBox, h } from "./dom.js";
import { go, has, notice, role, showNotice, takeNotice } from "./context.js";
import { showError } from "./forms.js";
import * as account from "./account.js";
import * as admin from "./admin.js";
import * as bookings from "./bookings.js";
import * as events from "./events.js";
import * as manage from "./manage.js";

const ANYONE = null;
const CUSTOMER = ["CUSTOMER"];
const MANAGERS = ["ORGANIZER", "ADMIN"];
const ADMIN = ["ADMIN"];

const ROUTES = [
  [/^\/$/, events.list, ANYONE],
  [/^\/events\/(\d+)$/, events.detail, ANYONE],
  [/^\/holds\/(\d+)$/, events.hold, CUSTOMER],
  [/^\/bookings$/, bookings.list, CUSTOMER],
  [/^\/bookings\/(\d+)$/, bookings.detail, ["CUSTOMER", "ORGANIZER", "ADMIN"]],
  [/^\/login$/, account.login, ANYONE],
  [/^\/register$/, account.register, ANYONE],
  [/^\/forgot-password$/, account.forgotPassword, ANYONE],
  [/^\/reset-password$/, account.resetPassword, ANYONE],
  [/^\/account\/password$/, account.password, ["CUSTOMER", "ORGANIZER", "ADMIN"]],
  [/^\/manage$/, manage.list, MANAGERS],
  [/^\/manage\/new$/, manage.create, MANAGERS],
  [/^\/manage\/(\d+)(?:\/([a-z-]+))?$/, manage.event, MANAGERS],
  [/^\/admin\/users$/, admin.users, ADMIN],
  [/^\/admin\/stats$/, admin.stats, ADMIN],
];

const main = document.getElementById("main");
let current = null;

/** One rendering of one route: its root element, its cleanups, whether it is still shown. */
class View {
  constructor() {
    this.root = h("div", { class: "view" });
    this.cleanups = [];
    this.heading = null;
    this.focusTarget = null; // what gets the focus after a navigation: the h1 unless a view says otherwise
  }

  alive() {
    return current === this;
  }

  onLeave(fn) {
    this.cleanups.push(fn);
  }

  leave() {
    for (const fn of this.cleanups.splice(0)) fn();
  }

  /** The view's h1 (focused after a navigation) and the document's title. */
  title(text) {
    document.title = `${text} · eventbook`;
    if (this.heading) this.heading.textContent = text;
    else {
      this.heading = h("h1", { tabindex: "-1" }, text);
      this.root.prepend(this.heading);
    }
    return this.heading;
  }

  add(...children) {
    for (const child of children) if (child) this.root.append(child);
    return children[0];
  }
}

function parse() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search = ""] = hash.split("?");
  return { path: path || "/", query: new URLSearchParams(search) };
}

/** Show the route in the address; `navigated`: the user went there (the old notice goes). */
async function render({ navigated = true } = {}) {
  const { path, query } = parse();
  if (current) current.leave();
  const view = new View();
  current = view;
  clear(main, view.root);
  const text = takeNotice();
  if (text || navigated) showNotice(text);
  updateNav();
  const route = ROUTES.find(([pattern]) => pattern.test(path));
  if (!route) {
    view.title("Page not found");
    view.add(h("p", {}, "There is nothing here. ", h("a", { href: "#/" }, "See the events.")));
  } else {
    const [pattern, show, roles] = route;
    if (roles && !roles.includes(role())) {
      account.needLogin(view, roles, path);
    } else {
      try {
        await show(view, pattern.exec(path).slice(1), query);
      } catch (error) {
        if (view.alive()) {
          // A view that could not be shown still names what happened, in its heading and title.
          if (!view.heading && error.status === 404) {
            view.title(error.message); // the heading says it: no second copy, a way on instead
            view.add(h("p", {}, h("a", { href: "#/" }, "See the events.")));
          } else {
            if (!view.heading) view.title("This page could not be shown");
            const box = errorBox();
            view.add(box);
            showError(box, error);
          }
        }
      }
    }
  }
  const target = view.focusTarget || view.heading;
  if (navigated && view.alive() && target) target.focus();
}

/** The nav's links, the one of the page shown marked: the longest that is this page or leads to it. */
function links(pairs) {
  const here = `#${parse().path}`;
  const leads = (href) => here === href || (href !== "#/" && here.startsWith(`${href}/`));
  const current = pairs.map(([href]) => href).filter(leads).sort((a, b) => b.length - a.length)[0];
  return pairs.map(([href, text]) => h("li", {}, h("a", { href, "aria-current": href === current ? "page" : null }, text)));
}

function updateNav() {
  const nav = document.getElementById("nav");
  const user = api.currentUser();
  const pairs = [["#/", "Events"]];
  if (!user) {
    pairs.push(["#/login", "Log in"], ["#/register", "Register"]);
  } else {
    if (user.role === "CUSTOMER") pairs.push(["#/bookings", "My bookings"]);
    if (user.role === "ORGANIZER" || user.role === "ADMIN") {
      pairs.push(["#/manage", user.role === "ADMIN" ? "Manage events" : "My events"], ["#/manage/new", "New event"]);
    }
    if (user.role === "ADMIN") {
      pairs.push(["#/admin/users", "Users"]);
      if (has("adminstats")) pairs.push(["#/admin/stats", "Figures"]);
    }
    pairs.push(["#/account/password", "Change password"]);
  }
  const items = links(pairs);
  if (user) {
    const out = h("button", { type: "button", class: "link" }, "Log out");
    out.addEventListener("click", async () => {
      out.disabled = true;
      await api.logOut().catch(() => {});
      go("#/");
    });
    items.push(h("li", { class: "who" }, h("span", {}, `${user.name || user.email} (${user.role.toLowerCase()})`), out));
  }
  clear(nav, items);
}

api.onSession((_user, reason) => {
  if (reason) {
    // The session ended by itself (expired, revoked, disabled): say so, show the page as it now is.
    notice(reason);
    render({ navigated: false });
  } else updateNav();
});

window.addEventListener("hashchange", () => render());
// The skip link's #main is not a route: it moves the focus only.
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

(async () => {
  await api.resume();
  if (!current) await render({ navigated: false }); // unless the end of a session rendered already
})();
