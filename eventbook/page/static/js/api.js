// The page's client of the API (same origin, /api).
//
// The access token lives in this module's memory only, never in localStorage or
// sessionStorage: a script injected into the page could read those. The refresh token
// is the HttpOnly cookie eventbook_refresh, which only /api/auth receives; a refresh by
// cookie must echo the eventbook_csrf cookie in X-CSRF-Token.

const CSRF_COOKIE = "eventbook_csrf";
const REFRESH_LOCK = "eventbook-refresh";
const REFRESH_MARGIN_MS = 30_000; // refresh this long before the access token expires

let token = null;
let tokenExpiresAt = 0; // server clock, ms
let user = null;
let clockOffset = 0; // server clock minus this browser's, ms (from the Date header)
let refreshing = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, body, retryAfter) {
    super(body && body.message ? body.message : `The server answered ${status}`);
    this.status = status;
    this.code = (body && body.code) || "error";
    this.errors = (body && body.errors) || {};
    this.body = body || {};
    this.retryAfter = retryAfter;
  }
}

/** fn(user, reason) after every login, logout or end of session. */
export function onSession(fn) {
  listeners.add(fn);
}

export function currentUser() {
  return user;
}

/** The server's clock now, in ms: hold countdowns use it, not the browser's. */
export function serverNow() {
  return Date.now() + clockOffset;
}

/** Tell the session's listeners (`onSession`) that it changed, and why when it ended. */
function sessionChanged(reason) {
  for (const fn of listeners) fn(user, reason);
}

function readCookie(name) {
  const prefix = name + "=";
  for (const part of document.cookie.split(";")) {
    const cookie = part.trim();
    if (cookie.startsWith(prefix)) return decodeURIComponent(cookie.slice(prefix.length));
  }
  return "";
}

function expiresAt(jwt) {
  try {
    const payload = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).exp * 1000;
  } catch {
    return 0;
  }
}

function keepToken(newToken) {
  token = newToken;
  tokenExpiresAt = expiresAt(newToken);
}

/** Forget the session in this page; `reason` is shown to the user. */
function endSession(reason) {
  const had = user !== null || token !== null;
  token = null;
  tokenExpiresAt = 0;
  user = null;
  // Without its CSRF value the next load does not try a refresh that cannot succeed.
  document.cookie = `${CSRF_COOKIE}=; Max-Age=0; Path=/; SameSite=Strict`;
  if (had || reason) sessionChanged(reason);
}

function noteClock(response) {
  const date = Date.parse(response.headers.get("Date") || "");
  if (!Number.isNaN(date)) clockOffset = date - Date.now();
}

async function bodyOf(response) {
  const type = response.headers.get("Content-Type") || "";
  if (response.status === 204 || !type.includes("json")) return null;
  try {
    return await response.json();
  } catch {
    return null;
  }
}

/** A random key for Idempotency-Key (crypto.randomUUID needs a secure context). */
export function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Get a new access token with the refresh cookie. Refreshes never overlap: within the
 * page one promise is shared, and across tabs the Web Locks API queues them (two tabs
 * presenting one refresh token at once would look like theft and end the login).
 * Resolves to true when a token was obtained.
 */
export function refresh() {
  if (!refreshing) {
    const run = () => refreshWithCookie();
    const locked = navigator.locks ? navigator.locks.request(REFRESH_LOCK, run) : run();
    refreshing = locked.finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function refreshWithCookie() {
  const csrf = readCookie(CSRF_COOKIE);
  if (!csrf) {
    if (token || user) endSession("Your session has ended. Please log in again.");
    return false;
  }
  let response;
  try {
    response = await fetch("/api/auth/refresh", {
      method: "POST",
      headers: { "X-CSRF-Token": csrf, Accept: "application/json" },
      credentials: "same-origin",
    });
  } catch {
    return false; // offline: keep the cookie, try again on the next request
  }
  noteClock(response);
  const body = await bodyOf(response);
  if (response.ok && body && body.token) {
    keepToken(body.token);
    return true;
  }
  if (response.status === 401) {
    endSession(
      body && body.code === "refresh_token_reused"
        ? "You were logged out: this login was used from somewhere else at the same time. Please log in again."
        : "Your session has ended. Please log in again.",
    );
  }
  return false;
}

/**
 * At load: resume the session the cookie holds, if any. A server out of reach (a blip,
 * a 503) is asked twice more, a few seconds apart; after that the user is told so, rather
 * than shown as logged out without a word. A refusal (401) ends the session, cookie and all.
 */
export async function resume() {
  for (const wait of [0, 1000, 3000]) {
    if (!readCookie(CSRF_COOKIE)) return null; // none, or the session was refused and ended
    if (wait) await new Promise((done) => setTimeout(done, wait));
    if (await refresh()) {
      try {
        user = await request("GET", "/api/auth/me");
        sessionChanged(null);
        return user;
      } catch {
        user = null; // no half session (a token but no user): ask again
        token = null;
        tokenExpiresAt = 0;
      }
    }
  }
  sessionChanged("The server could not be reached, so you are shown as logged out for now. Reload the page to try again.");
  return null;
}

/**
 * Send one request to the API. Resolves to {data, response}; rejects with ApiError for
 * an error answer (its message is the envelope's) and for a network failure.
 */
export async function send(method, path, { body, headers = {}, as = "json", retry = true } = {}) {
  const authenticated = token !== null;
  if (authenticated && serverNow() > tokenExpiresAt - REFRESH_MARGIN_MS) await refresh();
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (token) init.headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: "network", message: "The server cannot be reached. Check your connection and try again." });
  }
  noteClock(response);
  if (response.status === 401 && authenticated && retry) {
    // The token expired or was revoked: one refresh, then the request once more.
    if (await refresh()) return send(method, path, { body, headers, as, retry: false });
  }
  if (!response.ok && response.status !== 304) {
    const retryAfter = Number(response.headers.get("Retry-After")) || null;
    throw new ApiError(response.status, await bodyOf(response), retryAfter);
  }
  const data = as === "blob" ? await response.blob() : await bodyOf(response);
  return { data, response };
}

export async function request(method, path, options) {
  return (await send(method, path, options)).data;
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, body, options) => request("POST", path, { ...options, body });
export const patch = (path, body, options) => request("PATCH", path, { ...options, body });
export const put = (path, body, options) => request("PUT", path, { ...options, body });
export const del = (path, options) => request("DELETE", path, options);

/** A paged list: {items, total, next, prev} (next/prev: whether those pages exist). */
export async function list(path) {
  const { data, response } = await send("GET", path);
  const link = response.headers.get("Link") || "";
  return {
    items: data || [],
    total: Number(response.headers.get("X-Total-Count") || (data || []).length),
    next: /rel="next"/.test(link),
    prev: /rel="prev"/.test(link),
  };
}

export async function logIn(email, password) {
  const body = await request("POST", "/api/auth/login", { body: { email, password } });
  keepToken(body.token); // body.refreshToken is not kept: the cookie holds it
  user = body.user;
  sessionChanged(null);
  return user;
}

export async function logOut() {
  try {
    if (token) await request("POST", "/api/auth/logout", { retry: false });
  } finally {
    endSession(null);
  }
}

/** Called when the API says this account may no longer act (disabled, revoked). */
export function sessionRefused(error) {
  if (error && error.status === 401 && user) endSession("Your session has ended. Please log in again.");
}
