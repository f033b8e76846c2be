// A file the server mailed and keeps for the mail's link
// (`/app/#file=ID`): fetched with the session's token, as protected bytes
// the page then checks and decrypts like a file picked from the device.

import { ApiError } from './api.js';

/** What a share mail's link names: the file's content id and, when the
 * sender wrote one, the protected message's (32 hex digits each).
 * @param {string} hash @returns {{file: string, message?: string}|undefined} */
export function linkedFile(hash) {
  const m = /^#file=([0-9a-f]{32})(?:&message=([0-9a-f]{32}))?$/.exec(hash);
  return m ? { file: m[1], message: m[2] } : undefined;
}

/**
 * @param {import('./api.js').Session} session @param {string} id
 * @returns {Promise<{bytes: Uint8Array, name: string}>}
 */
export async function fetchSent(session, id) {
  const get = async () => {
    if (!session.access) await session.renew();
    return fetch(`/v1/content/${id}/file`, {
      headers: { Authorization: `Bearer ${session.access}` },
      credentials: 'omit',
      cache: 'no-store',
    });
  };
  let resp = await get();
  if (resp.status === 401) {
    session.access = undefined;
    resp = await get();
  }
  if (!resp.ok) {
    let err = { code: `http_${resp.status}`, message: `the server answered ${resp.status}` };
    try {
      err = (await resp.json()).error || err;
    } catch {
      // keep the generic error
    }
    throw new ApiError(resp.status, err.code, err.message);
  }
  const disposition = resp.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(disposition);
  return { bytes: new Uint8Array(await resp.arrayBuffer()), name: m ? m[1] : `${id}.rights` };
}
