// Sign in: the API sets the session cookie; the CSRF token it returns goes with each change.
import { rememberCsrf, request } from "./api.js";
import { showError } from "./common.js";
import { page, t } from "./i18n.js";

const form = document.getElementById("login-form");
const error = document.getElementById("login-error");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(error, null);
  const button = document.getElementById("login-submit");
  button.disabled = true;
  try {
    const body = { username: form.username.value, password: form.password.value };
    const answer = await request("POST", "/auth/login", body, { signIn: false });
    rememberCsrf(answer && (answer.csrf_token || answer.csrf));
    location.assign(page.next || "/");
  } catch (e) {
    showError(error, e.status === 401 || e.status === 403 ? new Error(t("User name or password is wrong.")) : e);
  } finally {
    button.disabled = false;
  }
});
