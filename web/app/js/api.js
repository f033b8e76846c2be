// The server's API as the page uses it: same origin, JSON, the access token
// held in memory only (a fresh one is fetched with the refresh token when
// it is missing or refused), errors as ApiError with the server's code.

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** @param {string} method @param {string} path @param {unknown} [body] @param {string} [token] */
async function call(method, path, body, token) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached; check your connection and try again');
  }
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!resp.ok) {
    const err = json && json.error ? json.error : { code: 'http_' + resp.status, message: `the server answered ${resp.status}` };
    throw new ApiError(resp.status, err.code, err.message);
  }
  return json;
}

export class Session {
  /** @param {() => Promise<string|undefined>} refreshToken the newest refresh token
   * @param {(token: string) => Promise<void>} keep stores the one the server hands back */
  constructor(refreshToken, keep) {
    this.refreshToken = refreshToken;
    this.keep = keep;
    /** @type {string|undefined} */
    this.access = undefined;
    /** @type {Promise<void>|undefined} */
    this.renewing = undefined;
  }

  /** An authenticated call; one retry with a new access token on 401.
   * @param {string} method @param {string} path @param {unknown} [body] */
  async call(method, path, body) {
    if (!this.access) await this.renew();
    try {
      return await call(method, path, body, this.access);
    } catch (e) {
      if (!(e instanceof ApiError) || e.status !== 401) throw e;
      await this.renew();
      return call(method, path, body, this.access);
    }
  }

  /** The server spends a refresh token on use and ends the session when a
   * spent one comes back, so one exchange runs at a time: in this page
   * (one shared promise) and across tabs (a Web Lock), each reading the
   * newest stored token. */
  renew() {
    this.renewing ??= (navigator.locks
      ? navigator.locks.request('rightsfs-refresh', () => this.exchange())
      : this.exchange()
    ).finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  async exchange() {
    const token = await this.refreshToken();
    if (!token) throw new ApiError(401, 'signed_out', 'you are signed out');
    const r = await call('POST', '/v1/auth/refresh', { refresh_token: token });
    if (r.refresh_token) await this.keep(r.refresh_token);
    this.access = r.access_token;
  }
}

/** @param {string} email */
export function startSignIn(email) {
  return call('POST', '/v1/auth/start', { email, signup: false });
}

/** @param {{email: string, code: string, device_name: string, device_public_key: string}} req */
export function verifySignIn(req) {
  return call('POST', '/v1/auth/verify', { ...req, reader_only: true });
}

/** @param {string} refreshToken */
export function logout(refreshToken) {
  return call('POST', '/v1/auth/logout', { refresh_token: refreshToken });
}

export function serverKey() {
  return call('GET', '/v1/server-key');
}
