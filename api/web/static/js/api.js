// The API as the pages use it: same-origin fetches with the session cookie, the CSRF token
// on every change, and the sign-in page when the session is gone.
import { t } from "./i18n.js";

export const API = "/api/v1";
const CSRF_KEY = "edgebatch.csrf";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function rememberCsrf(token) {
  if (token) sessionStorage.setItem(CSRF_KEY, token);
}

function csrfToken() {
  const fromCookie = document.cookie.split("; ").find((c) => c.startsWith("edgebatch_csrf="));
  return sessionStorage.getItem(CSRF_KEY) || (fromCookie ? decodeURIComponent(fromCookie.split("=")[1]) : "");
}

export function toSignIn() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

async function errorText(response) {
  try {
    const body = await response.json();
    const detail = body.detail ?? body.message ?? body.error;
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d)).join("; ");
    return JSON.stringify(body);
  } catch {
    return response.statusText || t("The server did not answer as expected.");
  }
}

export async function request(method, path, body, { signIn = true } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken();
  let response;
  try {
    response = await fetch(API + path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, t("The server cannot be reached."));
  }
  if (response.status === 401 && signIn) {
    // The session is gone: off to sign in. Nothing waiting on this answer goes on meanwhile.
    toSignIn();
    return new Promise(() => {});
  }
  if (!response.ok) throw new ApiError(response.status, await errorText(response));
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body ?? {});

// A route this server does not offer (yet): the page says so instead of failing.
export async function getOptional(path) {
  try {
    return await get(path);
  } catch (error) {
    if (error.status === 404 || error.status === 405) return null;
    throw error;
  }
}

export function items(body) {
  if (Array.isArray(body)) return body;
  return (body && (body.items || body.runs || body.data)) || [];
}
