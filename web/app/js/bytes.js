// Byte helpers shared by the format reader and the page: hex, base64,
// concatenation and big-endian integers. Plain functions, no state.

/** @param {string} hex @returns {Uint8Array} */
export function fromHex(hex) {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) throw new TypeError('not hex');
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** @param {Uint8Array} bytes @returns {string} */
export function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** Standard base64 (the API's encoding of byte strings).
 * @param {string} s @returns {Uint8Array} */
export function fromBase64(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** @param {Uint8Array} bytes @returns {string} */
export function toBase64(bytes) {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** @param {...(Uint8Array|number[])} parts @returns {Uint8Array} */
export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** ASCII/UTF-8 bytes of a string (domain tags, info strings).
 * @param {string} s @returns {Uint8Array} */
export function utf8(s) {
  return new TextEncoder().encode(s);
}

/** Eight big-endian bytes of a non-negative safe integer.
 * @param {number} n @returns {Uint8Array} */
export function u64be(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

/** Equality without an early exit, for MACs and key checks.
 * @param {Uint8Array} a @param {Uint8Array} b @returns {boolean} */
export function constantTimeEqual(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** @param {Uint8Array} bytes @returns {boolean} */
export function allZero(bytes) {
  let acc = 0;
  for (const b of bytes) acc |= b;
  return acc === 0;
}
