// The publishing licence (in every file header) and the use licence (from
// the server), decoded from their postcard bodies and checked with
// WebCrypto exactly as docs/FORMAT.md section 4 and the server's
// use-licence signature prescribe.

import { Reader, DecodeError } from './postcard.js';
import { concat, utf8, allZero, constantTimeEqual } from './bytes.js';

const PL_DOMAIN_V1 = utf8('rightsfs publishing licence v1\0');
const PL_DOMAIN_V2 = utf8('rightsfs publishing licence v2\0');
const PL_DOMAIN_V3 = utf8('rightsfs publishing licence v3\0');
const CERT_DOMAIN = utf8('rightsfs delegated signing key v1\0');
const UL_DOMAIN = utf8('rightsfs use licence v1\0');
const PL_HASH_DOMAIN = utf8('rightsfs publishing licence hash\0');
const RIGHT_NAMES = ['view', 'edit', 'export', 'share', 'owner'];
const MAX_OFFLINE_DAYS = 3650;

/**
 * @typedef {{to: string, rights: string[], expires: number|null}} Grant
 * @typedef {{owner: string, grants: Grant[], expires: number|null, offlineDays: number,
 *   grantsSealed: boolean}} Policy
 * @typedef {{toServer: Uint8Array, toOwner: Uint8Array, sealed: Uint8Array}} SealedGrants
 * @typedef {{version: number, contentId: Uint8Array, serverUrl: string, serverKey: Uint8Array,
 *   ownerDeviceKey: Uint8Array, policy: Policy, sealedGrants: SealedGrants|null, wrappedKey: Uint8Array,
 *   createdAt: number}} PublishingLicenceBody
 * @typedef {{body: Uint8Array, signature: Uint8Array}} SignedLicence
 * @typedef {{version: number, contentId: Uint8Array, user: string, deviceId: string, rights: string[],
 *   issuedAt: number, validUntil: number, wrappedKey: Uint8Array, owner: string|null,
 *   licenceHash: Uint8Array|null}} UseLicenceBody
 */

/** A set of rights closed under implication, in the server's order: owner
 * implies all, edit/export/share imply view.
 * @param {Reader} r @returns {string[]} */
function rights(r) {
  const names = r.seq(() => r.string());
  const set = new Set();
  for (const n of names) {
    if (!RIGHT_NAMES.includes(n)) throw new DecodeError(`unknown right '${n}'`);
    set.add(n);
  }
  if (set.has('owner')) RIGHT_NAMES.forEach((n) => set.add(n));
  if (set.has('edit') || set.has('export') || set.has('share')) set.add('view');
  return RIGHT_NAMES.filter((n) => set.has(n));
}

/** @param {Reader} r @returns {Policy} */
function policy(r) {
  const owner = r.string();
  const grants = r.seq(() => ({ to: r.string(), rights: rights(r), expires: r.option(() => r.i64()) }));
  const expires = r.option(() => r.i64());
  const offlineDays = r.u32();
  if (offlineDays > MAX_OFFLINE_DAYS) throw new DecodeError('offline days out of range');
  const seen = new Set();
  for (const g of grants) {
    if (g.rights.length === 0) throw new DecodeError(`the grant to ${g.to} names no rights`);
    if (seen.has(g.to)) throw new DecodeError(`${g.to} is granted twice`);
    seen.add(g.to);
  }
  return { owner, grants, expires, offlineDays, grantsSealed: false };
}

/** A version 3 policy: owner, expiry and offline days in the clear, the
 * grants sealed to the server and the owner's device (docs/FORMAT.md
 * section 4). A reader learns its own rights from its use licence.
 * @param {Reader} r @returns {{policy: Policy, sealedGrants: SealedGrants}} */
function sealedPolicy(r) {
  const owner = r.string();
  const expires = r.option(() => r.i64());
  const offlineDays = r.u32();
  if (offlineDays > MAX_OFFLINE_DAYS) throw new DecodeError('offline days out of range');
  const sealedGrants = { toServer: r.bytesField(), toOwner: r.bytesField(), sealed: r.bytesField() };
  return { policy: { owner, grants: [], expires, offlineDays, grantsSealed: true }, sealedGrants };
}

/** A `PublishingLicence` as the header carries it: body bytes, signature.
 * @param {Reader} r @returns {SignedLicence} */
export function readSignedLicence(r) {
  return { body: r.bytesField(), signature: r.bytesField() };
}

/** Decodes a publishing licence body without checking its signature.
 * @param {Uint8Array} body @returns {PublishingLicenceBody} */
export function decodePublishingBody(body) {
  const r = new Reader(body);
  const version = r.u8();
  if (version !== 1 && version !== 2 && version !== 3) throw new DecodeError('publishing licence version');
  const contentId = r.take(16);
  const serverUrl = r.string();
  const serverKey = r.take(32);
  const ownerDeviceKey = r.bytesField();
  const { policy: p, sealedGrants } = version === 3 ? sealedPolicy(r) : { policy: policy(r), sealedGrants: null };
  const out = {
    version,
    contentId,
    serverUrl,
    serverKey,
    ownerDeviceKey,
    policy: p,
    sealedGrants,
    wrappedKey: r.bytesField(),
    createdAt: r.i64(),
  };
  if (!r.done()) throw new DecodeError('bytes after the publishing licence');
  return out;
}

/** @param {Uint8Array} spki @returns {Promise<CryptoKey>} */
function rsaPssKey(spki) {
  return crypto.subtle.importKey('spki', spki, { name: 'RSA-PSS', hash: 'SHA-256' }, false, ['verify']);
}

/** RSA-PSS-SHA256, MGF1-SHA256, salt 32, as the device keys sign.
 * @param {CryptoKey} key @param {Uint8Array} sig @param {Uint8Array} msg */
function pssVerify(key, sig, msg) {
  return crypto.subtle.verify({ name: 'RSA-PSS', saltLength: 32 }, key, sig, msg);
}

// Encodings of the Ed25519 points of small order (and the non-canonical
// encodings of y = 0 and y = 1). The reference verifier's strict mode
// refuses such keys and signature points, which WebCrypto does not, so a
// key for which many messages verify can never stand in for a device's.
const WEAK_POINTS = [
  '0100000000000000000000000000000000000000000000000000000000000000',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  '0000000000000000000000000000000000000000000000000000000000000000',
  '0000000000000000000000000000000000000000000000000000000000000080',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a',
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05',
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f',
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  '0100000000000000000000000000000000000000000000000000000000000080',
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
];

/** @param {Uint8Array} p @returns {boolean} */
function weakPoint(p) {
  const hex = Array.from(p, (b) => b.toString(16).padStart(2, '0')).join('');
  return WEAK_POINTS.includes(hex);
}

/** Ed25519 verification refusing weak keys and signature points.
 * @param {Uint8Array} publicKey @param {Uint8Array} sig @param {Uint8Array} msg
 * @returns {Promise<boolean>} */
export async function ed25519Verify(publicKey, sig, msg) {
  if (publicKey.length !== 32 || sig.length !== 64) return false;
  if (weakPoint(publicKey) || weakPoint(sig.subarray(0, 32))) return false;
  try {
    const key = await crypto.subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'Ed25519' }, key, sig, msg);
  } catch {
    return false;
  }
}

/** Checks a publishing licence's signature by the device key it names:
 * version 1 RSA-PSS over the body, versions 2 and 3 a delegated Ed25519
 * key the device certified, each under its own domain tag. Whether that device is the owner's is the server's
 * check at registration.
 * @param {SignedLicence} pl @param {PublishingLicenceBody} body @returns {Promise<boolean>} */
export async function verifyPublishing(pl, body) {
  let key;
  try {
    key = await rsaPssKey(body.ownerDeviceKey);
  } catch {
    return false;
  }
  if (body.version === 1) return pssVerify(key, pl.signature, concat(PL_DOMAIN_V1, pl.body));
  if (pl.signature.length !== 32 + 256 + 64) return false;
  const edPublic = pl.signature.subarray(0, 32);
  const cert = pl.signature.subarray(32, 288);
  const edSig = pl.signature.subarray(288);
  if (!(await pssVerify(key, cert, concat(CERT_DOMAIN, edPublic)))) return false;
  return ed25519Verify(edPublic, edSig, concat(body.version === 2 ? PL_DOMAIN_V2 : PL_DOMAIN_V3, pl.body));
}

export class LicenceError extends Error {
  /** @param {string} code @param {string} message */
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

/** SHA-256 over a domain tag and a publishing licence's signed body: how a
 * version 2 use licence names the licence the server registered.
 * @param {Uint8Array} plBody @returns {Promise<Uint8Array>} */
export async function publishingLicenceHash(plBody) {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', concat(PL_HASH_DOMAIN, plBody)));
}

/** Verifies the server's signature on a use licence, then decodes it and
 * checks it is for this content, user and device and still valid, and
 * (version 2) for the publishing licence this file carries. Only then may
 * the device key unwrap what it carries. A version 2 licence names the
 * owner the server registered, which the page shows instead of the
 * header's claim.
 * @param {SignedLicence} ul
 * @param {Uint8Array} serverSigningKey Ed25519 public key
 * @param {{contentId: Uint8Array, user: string, deviceId: string, now: number, publishingBody: Uint8Array}} expect
 * @returns {Promise<UseLicenceBody>} */
export async function verifyUseLicence(ul, serverSigningKey, expect) {
  if (!(await ed25519Verify(serverSigningKey, ul.signature, concat(UL_DOMAIN, ul.body)))) {
    throw new LicenceError('bad_signature', 'the use licence is not signed by this server');
  }
  let b;
  try {
    const r = new Reader(ul.body);
    b = {
      version: r.u8(),
      contentId: r.take(16),
      user: r.string(),
      deviceId: r.string(),
      rights: rights(r),
      issuedAt: r.i64(),
      validUntil: r.i64(),
      wrappedKey: r.bytesField(),
      owner: /** @type {string|null} */ (null),
      licenceHash: /** @type {Uint8Array|null} */ (null),
    };
    if (b.version === 2) {
      b.owner = r.string();
      b.licenceHash = r.take(32);
    }
    if (!r.done()) throw new DecodeError('bytes after the use licence');
  } catch (e) {
    throw new LicenceError('malformed', `the use licence does not decode (${e.message})`);
  }
  if (b.version !== 1 && b.version !== 2) throw new LicenceError('malformed', 'unknown use licence version');
  if (b.licenceHash && !constantTimeEqual(b.licenceHash, await publishingLicenceHash(expect.publishingBody))) {
    throw new LicenceError('mismatch', "the file's publishing licence is not the one registered for this content");
  }
  if (!constantTimeEqual(b.contentId, expect.contentId) || b.user !== expect.user || b.deviceId !== expect.deviceId) {
    throw new LicenceError('mismatch', 'the use licence is for another file, user or device');
  }
  if (!(expect.now < b.validUntil)) throw new LicenceError('expired', 'the use licence has expired');
  if (allZero(b.wrappedKey)) throw new LicenceError('malformed', 'the use licence carries no key');
  return b;
}
