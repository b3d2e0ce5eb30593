// The monitor's HTTP API as the page uses it. The CSRF token from sign-in
// lives only in this module's memory: every state change sends it back.

let csrf = null;

export class ApiError extends Error {}

async function call(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (csrf && method !== 'GET') headers['X-CSRF-Token'] = csrf;
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
  });
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    throw new ApiError(data?.error?.message ?? `${method} ${path}: HTTP ${res.status}`);
  }
  return data;
}

export async function signIn(name, password) {
  const who = await call('POST', '/api/session', { name, password });
  csrf = who.csrf_token;
  return who;
}

/** Who is signed in (by the session cookie, or by the authenticating proxy
 * in front of the monitor), or null; keeps the CSRF token it comes with. */
export async function whoAmI() {
  try {
    const who = await call('GET', '/api/session');
    csrf = who?.csrf_token ?? null;
    return who;
  } catch {
    return null;
  }
}

export const canChange = () => csrf !== null;

export async function signOut() {
  if (csrf) await call('DELETE', '/api/session').catch(() => null);
  csrf = null;
}

export const endCall = (id) => call('POST', `/api/calls/${encodeURIComponent(id)}/end`);
export const drainAgent = (id) => call('POST', `/api/agents/${encodeURIComponent(id)}/drain`);
export const latency = (minutes) => call('GET', `/api/latency?minutes=${minutes}`);
