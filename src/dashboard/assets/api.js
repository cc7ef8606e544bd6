// The JSON API of the same server, with the session cookie. Every failure becomes an ApiError whose
// message is the server's `error` text, so pages can show it as is.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1/${path}`, init);
  } catch {
    throw new ApiError(0, "The server could not be reached. Check your connection and try again.");
  }
  if (response.status === 204) return null;
  let data = null;
  try {
    data = await response.json();
  } catch {
    // A proxy's HTML error page, or an empty body: keep the status as the message.
  }
  if (!response.ok) {
    // A 401 on these means wrong credentials or "signed out", which their pages handle themselves.
    const expected401 = ["auth/login", "auth/signup", "auth/user", "auth/reset-password"].includes(path);
    if (response.status === 401 && !expected401) window.dispatchEvent(new Event("squirrel:unauthenticated"));
    const message = (data && data.error) || `The server answered ${response.status} ${response.statusText}`.trim();
    throw new ApiError(response.status, message);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, String(value));
  }
  return search.toString();
}

// The signed-in user, or null (401). Other failures are thrown: "signed out" must not hide an outage.
export async function currentUser() {
  try {
    return (await get("auth/user")).user;
  } catch (error) {
    if (error.status === 401) return null;
    throw error;
  }
}

// Every site of the user, following the pages of 20.
export async function allSites() {
  const sites = [];
  for (let page = 1; page <= 10; page += 1) {
    const data = await get(`sites?page=${page}`);
    sites.push(...data.results);
    if (!data.next) break;
  }
  return sites;
}
