// The public /v1 API as the dashboard uses it. The access token lives in this module's memory only: never in
// localStorage, sessionStorage or a cookie, so it ends with the tab and no other page script can find it stored.

let session = null; // {token, user, roles, accounts}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export function current() {
  return session;
}

export async function signIn(username, password) {
  const body = new URLSearchParams({ username, password });
  const res = await fetch("/v1/auth/token", { method: "POST", body });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, answer);
  // The claims are read for display only (which panels to show); the API checks the token on every request.
  const claims = JSON.parse(atob(answer.access_token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
  session = { token: answer.access_token, user: claims.sub, roles: claims.roles || [], accounts: claims.accounts || [] };
  return session;
}

export function signOut() {
  session = null;
}

export async function call(method, path, { query, json } = {}) {
  if (!session) throw new ApiError(401, { detail: "signed out" });
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== "") url.searchParams.set(k, v);
  const headers = { Authorization: `Bearer ${session.token}` };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(url, { method, headers, body: json === undefined ? undefined : JSON.stringify(json) });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, answer);
  return answer;
}

// Server-sent events read with fetch(), because a browser EventSource cannot send the Authorization header.
// It resumes like EventSource does: after a dropped stream (an API restart), it reconnects with Last-Event-ID,
// and the API sends what was missed before the live changes.
export async function follow(onEvent, onState, signal) {
  let last = null;
  let delay = 250;
  while (!signal.aborted && session) {
    try {
      const headers = { Authorization: `Bearer ${session.token}`, Accept: "text/event-stream" };
      if (last !== null) headers["Last-Event-ID"] = last;
      const res = await fetch("/v1/stream", { headers, signal, cache: "no-store" });
      if (!res.ok) {
        const problem = await res.json().catch(() => ({}));
        onState("refused", new ApiError(res.status, problem));
        if (res.status === 401 || res.status === 403) return;
        throw new ApiError(res.status, problem);
      }
      onState("live");
      delay = 250;
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message", data = "", id = null;
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
            else if (line.startsWith("id: ")) id = line.slice(4);
          }
          if (!data) continue; // a keep-alive comment
          if (id !== null) last = id;
          onEvent(event, JSON.parse(data), id);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
    }
    onState("reconnecting");
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 5000);
  }
}
