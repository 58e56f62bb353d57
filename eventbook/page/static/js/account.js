// Log in, register, change or reset the password, and the prompt shown where a role is needed.

import * as api from "./api.js";
import { errorBox, field, h, input } from "./dom.js";
import { go, notice } from "./context.js";
import { run, values } from "./forms.js";

function home(user) {
  if (user.role === "CUSTOMER") return "#/";
  if (user.role === "ADMIN") return "#/admin/users";
  return "#/manage";
}

/** Only a local hash route may be a destination after login. */
function destination(query, user) {
  const next = query.get("next") || "";
  return /^\/[\w/-]*$/.test(next) ? `#${next}` : home(user);
}

export function needLogin(view, roles, path) {
  const user = api.currentUser();
  const names = roles.map((r) => r.toLowerCase());
  const who = names.length > 2 ? `${names.slice(0, -1).join(", ")} or ${names.at(-1)}` : names.join(" or ");
  const article = /^[aeiou]/.test(who) ? "an" : "a";
  view.title(user ? "Not available to your account" : "Please log in");
  if (user) {
    view.add(h("p", {}, `This page is for ${article} ${who} account; you are logged in as ${user.role.toLowerCase()}.`));
  } else {
    const next = encodeURIComponent(path);
    view.add(
      h(
        "p",
        {},
        `This page is for ${article} ${who} account. `,
        h("a", { href: `#/login?next=${next}` }, "Log in"),
        " or ",
        h("a", { href: `#/register?next=${next}` }, "register"),
        ".",
      ),
    );
  }
}

/** A card form of `controls` sent with the button `label`: `send(values)` runs through
 * forms.js's `run` (refusals shown at their fields, or at those `codeFields` name), and
 * `then(answer, submit)` gets what it answered. */
function accountForm(label, controls, send, then, codeFields = {}) {
  const submit = h("button", { type: "submit" }, label);
  const box = errorBox();
  const form = h("form", { class: "card narrow", novalidate: true }, ...controls, h("div", { class: "actions" }, submit), box);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = await run(submit, box, () => send(values(form)), { form, codeFields });
    if (answer) then(answer, submit);
  });
  return form;
}

/** A request that answers 204: true once it is done. */
async function done(request) {
  await request;
  return true;
}

export function login(view, _params, query) {
  view.title("Log in");
  const form = accountForm(
    "Log in",
    [
      field("Email", input("email", { type: "email", autocomplete: "username", required: true })),
      field("Password", input("password", { type: "password", autocomplete: "current-password", required: true })),
    ],
    (data) => api.logIn(data.email, data.password),
    (user) => go(destination(query, user)),
  );
  const next = query.get("next");
  const registering = next ? `#/register?next=${encodeURIComponent(next)}` : "#/register";
  view.add(
    form,
    h("p", {}, h("a", { href: "#/forgot-password" }, "Forgot your password?")),
    h("p", {}, "No account yet? ", h("a", { href: registering }, "Register.")),
  );
}

export function register(view, _params, query) {
  view.title("Register");
  const roleChoice = h(
    "fieldset",
    { class: "choice" },
    h("legend", {}, "I want to"),
    ...[
      ["CUSTOMER", "book tickets (customer)"],
      ["ORGANIZER", "organise events (organizer)"],
    ].map(([value, text], i) =>
      h("label", {}, h("input", { type: "radio", name: "role", value, checked: i === 0 }), ` ${text}`),
    ),
  );
  const form = accountForm(
    "Create account",
    [
      field("Email", input("email", { type: "email", autocomplete: "email", required: true })),
      field("Password", input("password", { type: "password", autocomplete: "new-password", required: true }), "8 to 72 bytes"),
      field("Name (optional)", input("name", { autocomplete: "name" })),
      roleChoice,
    ],
    async (data) => {
      const body = { email: data.email, password: data.password, role: data.role };
      if (data.name) body.name = data.name;
      await api.post("/api/auth/register", body);
      return api.logIn(data.email, data.password);
    },
    (user) => {
      notice(`Welcome${user.name ? `, ${user.name}` : ""}: your account is ready.`);
      go(destination(query, user));
    },
    { email_taken: "email" },
  );
  view.add(form);
}

/** Any account's own password: the current one, then the new. Every other login of the
 * account ends; this one goes on (its tokens and refresh cookie keep working). */
export function password(view) {
  view.title("Change password");
  const form = accountForm(
    "Change password",
    [
      // The account's address, unseen: a password manager knows which login's password changes.
      h("input", { type: "email", name: "username", autocomplete: "username", value: api.currentUser()?.email, hidden: true, readonly: true, tabindex: -1 }),
      field("Current password", input("currentPassword", { type: "password", autocomplete: "current-password", required: true })),
      field("New password", input("newPassword", { type: "password", autocomplete: "new-password", required: true }), "8 to 72 bytes"),
    ],
    (data) => done(api.post("/api/auth/password", { currentPassword: data.currentPassword, newPassword: data.newPassword })),
    (_done, submit) => {
      notice("Your password is changed. Every other login of your account has ended; this one goes on.");
      go("#/account/password", submit); // the view again: its form empty
    },
    { forbidden: "currentPassword" }, // a wrong current password is shown at its field
  );
  view.add(h("p", {}, "Changing it logs your account out everywhere else: on other devices and in other browsers."), form);
}

/** The first step of a reset: an email with a code to the address. The answer is the
 * same whether an account has it or not, so it is shown as the server gives it. */
export function forgotPassword(view) {
  view.title("Forgot your password?");
  const form = accountForm(
    "Email me a code",
    [field("Email", input("email", { type: "email", autocomplete: "username", required: true }))],
    (data) => api.post("/api/auth/password/reset", { email: data.email }),
    (answer, submit) => {
      notice(answer.message);
      go("#/forgot-password", submit); // the view again: the message in the notice line
    },
  );
  view.add(
    h("p", {}, "Give the address of your account: we email it a code that sets a new password."),
    form,
    h("p", {}, h("a", { href: "#/reset-password" }, "I have a code")),
  );
}

/** The second step: the email's code (its link fills it in) and the new password. Every
 * login of the account ends, so the user logs in again. */
export function resetPassword(view, _params, query) {
  view.title("Reset password");
  const form = accountForm(
    "Reset password",
    [
      // The email's link fills the code in.
      field("Code", input("code", { autocomplete: "off", autocapitalize: "off", spellcheck: "false", required: true, value: query.get("code") || "" }), "from the password reset email"),
      field("New password", input("newPassword", { type: "password", autocomplete: "new-password", required: true }), "8 to 72 bytes"),
    ],
    (data) => done(api.post("/api/auth/password/reset/confirm", { code: data.code, newPassword: data.newPassword })),
    (_done, submit) => {
      notice("Your password is reset: log in with the new one.");
      go("#/login", submit);
    },
  );
  view.add(form, h("p", {}, "No code, or one that no longer works? ", h("a", { href: "#/forgot-password" }, "Ask for a new one.")));
}
