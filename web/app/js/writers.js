// Writer records (format version 2): beside each state, the signature of
// the device that saved it, with the server's certificate of that
// device's writer key and, for anyone but the owner, the server's edit
// certificate for this content. Holding the content key lets anyone seal
// a state; only a certified editor can sign one. Checked as the reference
// reader does, in the same order, with the same error kinds.

import { concat, utf8, constantTimeEqual } from './bytes.js';
import { ed25519Verify } from './licences.js';

const SIGNATURE_DOMAIN = utf8('rightsfs writer signature v1\0');
const DEVICE_DOMAIN = utf8('rightsfs device certificate v1\0');
const EDIT_DOMAIN = utf8('rightsfs edit certificate v1\0');
const REMOVED_DOMAIN = utf8('rightsfs removed devices v1\0');
const EDIT_BIT = 1 << 1;
/** Seconds a record's time may run ahead of this computer's clock. */
export const MAX_CLOCK_SKEW = 300;

/** @typedef {{account: string, deviceId: string, time: number, owner: boolean}} WrittenBy */

/** Big-endian fields of a record or certificate, bounds-checked. */
class Fields {
  /** @param {Uint8Array} b @param {() => Error} bad */
  constructor(b, bad) {
    this.b = b;
    this.at = 0;
    this.bad = bad;
  }
  /** @param {number} n */
  take(n) {
    if (this.at + n > this.b.length) throw this.bad();
    const out = this.b.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  u8() {
    return this.take(1)[0];
  }
  u16() {
    const t = this.take(2);
    return (t[0] << 8) | t[1];
  }
  u32() {
    const t = this.take(4);
    return ((t[0] << 24) >>> 0) + ((t[1] << 16) | (t[2] << 8) | t[3]);
  }
  i64() {
    const v = new DataView(this.take(8).slice().buffer).getBigInt64(0);
    return Number(v);
  }
  str() {
    return new TextDecoder('utf-8', { fatal: true }).decode(this.take(this.u8()));
  }
  end() {
    if (this.at !== this.b.length) throw this.bad();
  }
}

/** A server certificate: u16 length, body, Ed25519 signature over domain || body.
 * @param {Uint8Array} bytes @param {Uint8Array} domain @param {Uint8Array} serverKey
 * @returns {Promise<Uint8Array|null>} the body when the signature holds */
async function certified(bytes, domain, serverKey) {
  if (bytes.length < 2) return null;
  const n = (bytes[0] << 8) | bytes[1];
  if (bytes.length !== 2 + n + 64) return null;
  const body = bytes.subarray(2, 2 + n);
  return (await ed25519Verify(serverKey, bytes.subarray(2 + n), concat(domain, body))) ? body : null;
}

/** @param {Uint8Array} body */
function deviceCert(body) {
  const f = new Fields(body, () => new Error('device certificate'));
  if (f.u8() !== 2) throw new Error('device certificate version');
  const c = { account: f.str(), deviceId: f.str(), key: f.take(32), issuedAt: f.i64(), notAfter: f.i64() };
  f.end();
  return c;
}

/** @param {Uint8Array} body */
function editCert(body) {
  const f = new Fields(body, () => new Error('edit certificate'));
  if (f.u8() !== 1) throw new Error('edit certificate version');
  const c = {
    contentId: f.take(16),
    account: f.str(),
    key: f.take(32),
    rights: f.u8(),
    issuedAt: f.i64(),
    notAfter: f.i64(),
  };
  f.end();
  return c;
}

/** Formats Unix seconds as the reference reader does (RFC 3339, UTC). */
function when(/** @type {number} */ t) {
  return new Date(t * 1000).toISOString().replace('.000Z', 'Z');
}

/** Bytewise comparison of two strings' UTF-8, as the server orders ids.
 * @param {string} a @param {string} b */
function compareUtf8(a, b) {
  const x = utf8(a);
  const y = utf8(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/**
 * Checks one signed page of the server's list of removed devices
 * (`GET /v1/devices/removed`, docs/FORMAT.md "Removed devices") and
 * decodes it: u32 length, body, Ed25519 over domain || body.
 * @param {Uint8Array} bytes @param {Uint8Array} serverKey
 * @returns {Promise<{issuedAt: number, after: string, last: boolean, devices: {deviceId: string, removedAt: number}[]}>}
 */
export async function removedDevicePage(bytes, serverKey) {
  const bad = () => new Error('the list of removed devices does not verify');
  if (bytes.length < 4) throw bad();
  const n = ((bytes[0] << 24) >>> 0) + ((bytes[1] << 16) | (bytes[2] << 8) | bytes[3]);
  if (bytes.length !== 4 + n + 64) throw bad();
  const body = bytes.subarray(4, 4 + n);
  if (!(await ed25519Verify(serverKey, bytes.subarray(4 + n), concat(REMOVED_DOMAIN, body)))) throw bad();
  const f = new Fields(body, bad);
  if (f.u8() !== 1) throw bad();
  const issuedAt = f.i64();
  const after = f.str();
  const lastByte = f.u8();
  if (lastByte > 1) throw bad();
  const count = f.u32();
  if (count > (body.length - f.at) / 9) throw bad();
  const devices = [];
  let previous = after;
  for (let i = 0; i < count; i++) {
    const deviceId = f.str();
    const removedAt = f.i64();
    if (compareUtf8(deviceId, previous) <= 0) throw bad();
    devices.push({ deviceId, removedAt });
    previous = deviceId;
  }
  f.end();
  return { issuedAt, after, last: lastByte === 1, devices };
}

/**
 * The removed devices of a whole list: every page checked, each starting
 * where the one before ended, the last saying it is the last.
 * @param {Uint8Array[]} pages @param {Uint8Array} serverKey
 * @returns {Promise<Map<string, number>>} device id to removal time
 */
export async function removedDevices(pages, serverKey) {
  const out = new Map();
  let expected = '';
  let whole = false;
  for (const bytes of pages) {
    if (whole) throw new Error('the list of removed devices goes on past its last page');
    const page = await removedDevicePage(bytes, serverKey);
    if (page.after !== expected) throw new Error('the pages of the list of removed devices do not follow one another');
    for (const d of page.devices) out.set(d.deviceId, d.removedAt);
    whole = page.last;
    if (!whole) {
      if (page.devices.length === 0) throw new Error('a page of the list of removed devices is empty');
      expected = page.devices[page.devices.length - 1].deviceId;
    }
  }
  if (!whole) throw new Error('the list of removed devices is not whole');
  return out;
}

/**
 * Checks the writer record of the current state.
 * @param {import('./format.js').Header} header
 * @param {import('./format.js').State} state
 * @param {Uint8Array|null} record
 * @param {Uint8Array} serverKey the server's Ed25519 key (as for use licences)
 * @param {typeof import('./format.js').FormatError} FormatError
 * @param {{removed?: Map<string, number>, now?: number}} [opts] the devices
 *   removed from their accounts (from `removedDevices`) and the time now
 * @returns {Promise<WrittenBy>}
 */
export async function verifyWriter(header, state, record, serverKey, FormatError, opts = {}) {
  if (!record || record.length === 0) throw new FormatError('WriterUnsigned', 'the saved version is not signed by any writer');
  const malformed = () => new FormatError('WriterRecordMalformed', 'the writer record does not decode');
  const f = new Fields(record, malformed);
  const time = f.i64();
  const deviceBytes = f.take(f.u16());
  const editBytes = f.take(f.u16());
  const signature = f.take(64);
  f.end();
  let claimed = 'an unknown writer';
  try {
    const n = (deviceBytes[0] << 8) | deviceBytes[1];
    claimed = deviceCert(deviceBytes.subarray(2, 2 + n)).account;
  } catch {
    // keep the generic name
  }
  const body = await certified(deviceBytes, DEVICE_DOMAIN, serverKey);
  let dc;
  try {
    if (!body) throw new Error('signature');
    dc = deviceCert(body);
  } catch {
    throw new FormatError('WriterCertificate', `the writer ${claimed} is not certified by this file's server`, {
      writer: claimed,
    });
  }
  const writer = dc.account;
  const message = concat(SIGNATURE_DOMAIN, header.body.contentId, header.hash, state.plaintext, new Uint8Array(new BigInt64Array([0n]).buffer));
  new DataView(message.buffer).setBigInt64(message.length - 8, BigInt(time));
  if (!(await ed25519Verify(dc.key, signature, message))) {
    throw new FormatError('WriterSignatureInvalid', `the signature of ${writer} on this version does not verify`, { writer });
  }
  const notAllowed = (/** @type {string} */ reason) =>
    new FormatError('WriterNotAllowed', `${writer} may not write this file: ${reason}`, { writer });
  // A device removed from its account gets no new certificate: once its
  // last one ends, versions it signs are refused here.
  if (time > dc.notAfter) {
    throw notAllowed(
      `its device ${dc.deviceId} was certified until ${when(dc.notAfter)}, before the version was signed at ${when(time)} (the device may have been removed from the account)`,
    );
  }
  if (time < dc.issuedAt) {
    throw notAllowed(`the version claims ${when(time)}, before its device ${dc.deviceId} was certified (at ${when(dc.issuedAt)})`);
  }
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  if (time > now + MAX_CLOCK_SKEW) {
    throw notAllowed(`the version claims ${when(time)}, later than this computer's clock allows`);
  }
  const owner = dc.account === header.licence.policy.owner;
  if (!owner) {
    if (editBytes.length === 0) throw notAllowed('it is not the owner and shows no edit certificate');
    const eb = await certified(editBytes, EDIT_DOMAIN, serverKey);
    let ec;
    try {
      if (!eb) throw new Error('signature');
      ec = editCert(eb);
    } catch {
      throw notAllowed("its edit certificate is not signed by this file's server");
    }
    if (!constantTimeEqual(ec.contentId, header.body.contentId)) throw notAllowed('its edit certificate is for another file');
    if (ec.account !== dc.account || !constantTimeEqual(ec.key, dc.key)) {
      throw notAllowed('its edit certificate was issued to another writer');
    }
    if ((ec.rights & EDIT_BIT) === 0) throw notAllowed('its certificate does not grant edit');
    if (time > ec.notAfter) {
      throw notAllowed(`its edit certificate expired at ${when(ec.notAfter)}, before the version was signed at ${when(time)}`);
    }
    if (time < ec.issuedAt) throw notAllowed(`the version claims ${when(time)}, before its edit certificate was issued`);
  }
  const removedAt = opts.removed?.get(dc.deviceId);
  if (removedAt !== undefined) {
    throw new FormatError(
      'WriterRemoved',
      `this version was saved by ${writer} with device ${dc.deviceId}, which was removed from the account on ${when(removedAt)}: nothing that device signed is accepted any more`,
      { writer, device: dc.deviceId, removed_at: removedAt },
    );
  }
  return { account: dc.account, deviceId: dc.deviceId, time, owner };
}
