// This browser as a device: a non-extractable RSA-OAEP key pair made by
// WebCrypto and kept in IndexedDB (a CryptoKey is stored as an object the
// page can use but never read out), with the account and refresh token it
// was registered under. Nothing goes to localStorage.

const DB = 'rightsfs-viewer';
const STORE = 'device';
const KEY = 'current';

/**
 * @typedef {{email: string, deviceId: string, refreshToken: string, privateKey: CryptoKey}} Device
 */

/** @returns {Promise<IDBDatabase>} */
function db() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

/** @template T @param {IDBTransactionMode} mode @param {(s: IDBObjectStore) => IDBRequest} op @returns {Promise<T>} */
async function run(mode, op) {
  const d = await db();
  try {
    return await new Promise((resolve, reject) => {
      const tx = d.transaction(STORE, mode);
      const req = op(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req.result);
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error);
    });
  } finally {
    d.close();
  }
}

/** @returns {Promise<Device|undefined>} */
export function load() {
  return run('readonly', (s) => s.get(KEY));
}

/** @param {Device} device */
export function save(device) {
  return run('readwrite', (s) => s.put(device, KEY));
}

/** Forgets the device: the private key is gone for good. */
export function forget() {
  return run('readwrite', (s) => s.delete(KEY));
}

/** A fresh key pair; the private half can only decrypt and never leaves
 * WebCrypto. RSA-2048 with SHA-256 OAEP, as the server wraps content keys.
 * @returns {Promise<{privateKey: CryptoKey, spki: Uint8Array}>} */
export async function generate() {
  const pair = /** @type {CryptoKeyPair} */ (
    await crypto.subtle.generateKey(
      { name: 'RSA-OAEP', modulusLength: 2048, publicExponent: Uint8Array.of(1, 0, 1), hash: 'SHA-256' },
      false,
      ['encrypt', 'decrypt'],
    )
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', pair.publicKey));
  return { privateKey: pair.privateKey, spki };
}

/** Unwraps a use licence's content key (RSA-OAEP-SHA256).
 * @param {CryptoKey} privateKey @param {Uint8Array} wrapped @returns {Promise<Uint8Array>} */
export async function unwrap(privateKey, wrapped) {
  return new Uint8Array(await crypto.subtle.decrypt({ name: 'RSA-OAEP' }, privateKey, wrapped));
}

/** The browser's family, as far as its user agent says.
 * @returns {'Firefox'|'Edge'|'Chromium'|'Safari'|'browser'} */
export function browserName() {
  const ua = navigator.userAgent;
  return /Firefox\//.test(ua) ? 'Firefox' : /Edg\//.test(ua) ? 'Edge' : /Chrome\//.test(ua) ? 'Chromium' : /Safari\//.test(ua) ? 'Safari' : 'browser';
}

/** A name for the device list: the browser and platform, as far as known.
 * @returns {string} */
export function deviceName() {
  const ua = navigator.userAgent;
  const browser = browserName();
  const platform = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : 'unknown system';
  return `web viewer (${browser} on ${platform})`;
}
