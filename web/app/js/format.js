// Reading a protected file (docs/FORMAT.md): header, keys, state record,
// block commitment and blocks, checked in the order section 7 gives, with
// WebCrypto only. A second implementation of the reading side, so every
// step names the error variant the reference reader gives for the same
// damage (FormatError's `kind`).

import { Reader, DecodeError } from './postcard.js';
import { concat, utf8, u64be, constantTimeEqual, allZero } from './bytes.js';
import { readSignedLicence, decodePublishingBody, verifyPublishing } from './licences.js';
import { verifyWriter } from './writers.js';

export const MAGIC = Uint8Array.of(0x89, 0x52, 0x49, 0x47, 0x48, 0x54, 0x53, 0x0a);
const PREFIX_LEN = 14;
const MAC_LEN = 32;
const MAX_HEADER_BODY = 64 * 1024;
const SEALED_STATE_LEN = 92;

/**
 * What differs between format versions: where the two state slots start
 * (the header's end rounded up to `stateAlign`), how long each is, and how
 * a slot splits into the sealed state and the record beside it.
 * Version 2 adds a writer record to each slot, checked against the
 * server's key (`writers`).
 * @typedef {{stateAlign: number, slotLen: number, writers: boolean,
 *   splitSlot: (raw: Uint8Array) => {sealed: Uint8Array, record: Uint8Array|null}}} Layout
 * @type {Record<number, Layout>}
 */
const LAYOUTS = {
  1: {
    stateAlign: 256,
    slotLen: 128,
    writers: false,
    splitSlot(raw) {
      if (!allZero(raw.subarray(SEALED_STATE_LEN))) throw stateTampered();
      return { sealed: raw.subarray(0, SEALED_STATE_LEN), record: null };
    },
  },
  // Slots on their own 512-byte sectors: sealed state, u16 record length,
  // the record, zeros.
  2: {
    stateAlign: 512,
    slotLen: 1024,
    writers: true,
    splitSlot(raw) {
      const n = (raw[SEALED_STATE_LEN] << 8) | raw[SEALED_STATE_LEN + 1];
      const at = SEALED_STATE_LEN + 2;
      if (at + n > raw.length || !allZero(raw.subarray(at + n))) throw stateTampered();
      return { sealed: raw.subarray(0, SEALED_STATE_LEN), record: raw.subarray(at, at + n) };
    },
  },
};
/** Format versions this reader understands. */
export const VERSIONS = Object.keys(LAYOUTS).map(Number);

function stateTampered() {
  return new FormatError('StateTampered', "the file's state record was altered or torn");
}
const NONCE_LEN = 12;
const TAG_LEN = 16;
const OVERHEAD = NONCE_LEN + TAG_LEN;
const CIPHER_AES256GCM = 1;
const MAX_LEN = 2n ** 60n;
const MAX_SEALS = 2n ** 32n;
const MAX_GENERATION = 2n ** 64n - 1n;

/** A damaged or unreadable file; `kind` is the reference reader's variant.
 * @typedef {'Empty'|'NotProtected'|'UnsupportedVersion'|'HeaderTruncated'|'HeaderMalformed'|'WrongKey'|
 *   'HeaderTampered'|'StateTampered'|'Truncated'|'TrailingData'|'BlockCorrupt'|'BlockMoved'|'StaleBlock'|
 *   'WriterUnsigned'|'WriterRecordMalformed'|'WriterCertificate'|'WriterSignatureInvalid'|'WriterNotAllowed'|
 *   'WriterRemoved'} ErrorKind */
export class FormatError extends Error {
  /** @param {ErrorKind} kind @param {string} message @param {Record<string, number|string>} [detail] */
  constructor(kind, message, detail = {}) {
    super(message);
    this.kind = kind;
    Object.assign(this, detail);
  }
}

/**
 * @typedef {{contentId: Uint8Array, blockSize: number, cipher: number, keyCheck: Uint8Array,
 *   licence: import('./licences.js').SignedLicence, extensions: {kind: number, bytes: Uint8Array}[]}} HeaderBody
 * @typedef {{version: number, layout: Layout, body: HeaderBody,
 *   licence: import('./licences.js').PublishingLicenceBody, bytes: Uint8Array, hash: Uint8Array,
 *   dataOffset: number}} Header
 */

/** Parses the header without a key (owner, policy, server to ask).
 * @param {Uint8Array} file @returns {Promise<Header>} */
export async function parseHeader(file) {
  if (file.length === 0) throw new FormatError('Empty', 'the file is empty: it is not a protected file');
  const m = Math.min(file.length, MAGIC.length);
  if (!constantTimeEqual(file.subarray(0, m), MAGIC.subarray(0, m))) {
    throw new FormatError('NotProtected', 'not a protected file (no rightsfs magic)');
  }
  if (file.length < PREFIX_LEN) throw new FormatError('HeaderTruncated', 'the header is truncated');
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const version = view.getUint16(8);
  if (!VERSIONS.includes(version)) {
    throw new FormatError('UnsupportedVersion', `protected-file format version ${version} is not supported here`, {
      version,
    });
  }
  const n = view.getUint32(10);
  if (n > MAX_HEADER_BODY) throw new FormatError('HeaderMalformed', 'the header length is over 64 KiB');
  const len = PREFIX_LEN + n + MAC_LEN;
  if (file.length < len) throw new FormatError('HeaderTruncated', 'the header is truncated');
  const body = decodeHeaderBody(file.subarray(PREFIX_LEN, PREFIX_LEN + n));
  let licence;
  try {
    licence = decodePublishingBody(body.licence.body);
  } catch (e) {
    throw new FormatError('HeaderMalformed', `the publishing licence does not decode (${e.message})`);
  }
  if (!constantTimeEqual(licence.contentId, body.contentId)) {
    throw new FormatError('HeaderMalformed', "the content id differs from the publishing licence's");
  }
  const bytes = file.slice(0, len);
  const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  const layout = LAYOUTS[version];
  const dataOffset = Math.ceil(len / layout.stateAlign) * layout.stateAlign + 2 * layout.slotLen;
  return { version, layout, body, licence, bytes, hash, dataOffset };
}

/** @param {Uint8Array} raw @returns {HeaderBody} */
function decodeHeaderBody(raw) {
  let body;
  const r = new Reader(raw);
  try {
    body = {
      contentId: r.take(16),
      blockSize: r.u32(),
      cipher: r.u8(),
      keyCheck: r.take(16),
      licence: readSignedLicence(r),
      extensions: r.seq(() => ({ kind: r.u16(), bytes: r.bytesField() })),
    };
  } catch (e) {
    if (!(e instanceof DecodeError)) throw e;
    throw new FormatError('HeaderMalformed', `the header body does not decode (${e.message})`);
  }
  if (!r.done()) throw new FormatError('HeaderMalformed', 'bytes after the header body');
  if (body.cipher !== CIPHER_AES256GCM) throw new FormatError('HeaderMalformed', 'unknown cipher');
  const bs = body.blockSize;
  if (bs < 512 || bs > 1 << 20 || (bs & (bs - 1)) !== 0) {
    throw new FormatError('HeaderMalformed', 'the block size must be a power of two from 512 to 1 MiB');
  }
  if (body.extensions.some((x) => (x.kind & 0x8000) !== 0)) {
    throw new FormatError('HeaderMalformed', 'unknown critical extension');
  }
  return body;
}

/**
 * @typedef {{block: CryptoKey, state: CryptoKey, commit: CryptoKey, header: CryptoKey, check: Uint8Array}} FileKeys
 */

/** HKDF-SHA256(salt = content id, ikm = CEK) into the five per-file values;
 * all but the check value become non-extractable keys.
 * @param {CryptoKey} cek an HKDF key @param {Uint8Array} contentId @returns {Promise<FileKeys>} */
export async function deriveKeys(cek, contentId) {
  const bits = async (/** @type {string} */ info) =>
    new Uint8Array(
      await crypto.subtle.deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: contentId, info: utf8(info) }, cek, 256),
    );
  const aes = async (/** @type {string} */ info) => {
    const raw = await bits(info);
    const key = await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['decrypt']);
    raw.fill(0);
    return key;
  };
  const hmac = async (/** @type {string} */ info) => {
    const raw = await bits(info);
    const key = await crypto.subtle.importKey('raw', raw, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
    raw.fill(0);
    return key;
  };
  return {
    block: await aes('rightsfs v1 blocks'),
    state: await aes('rightsfs v1 state'),
    commit: await hmac('rightsfs v1 commitment'),
    header: await hmac('rightsfs v1 header mac'),
    check: (await bits('rightsfs v1 key check')).slice(0, 16),
  };
}

/** Imports 32 raw content-key bytes as an HKDF key and wipes them.
 * @param {Uint8Array} raw @returns {Promise<CryptoKey>} */
export async function importContentKey(raw) {
  try {
    return await crypto.subtle.importKey('raw', raw, 'HKDF', false, ['deriveBits']);
  } finally {
    raw.fill(0);
  }
}

/**
 * @typedef {{slot: number, generation: bigint, len: number, seals: bigint, flags: bigint, commitment: Uint8Array,
 *   plaintext: Uint8Array, record: Uint8Array|null}} State
 */

/** Opens one state slot; null for a never-written one. The record beside
 * the state (later versions) is returned unchecked.
 * @param {Layout} layout @param {CryptoKey} key @param {Uint8Array} headerHash @param {number} slot
 * @param {Uint8Array} raw @returns {Promise<State|null>} */
async function openSlot(layout, key, headerHash, slot, raw) {
  if (allZero(raw)) return null;
  const tampered = stateTampered;
  const { sealed, record } = layout.splitSlot(raw);
  if (sealed.length !== SEALED_STATE_LEN) throw tampered();
  let p;
  try {
    p = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: sealed.subarray(0, NONCE_LEN), additionalData: concat(utf8('rightsfs v1 state'), headerHash, [slot]) },
        key,
        sealed.subarray(NONCE_LEN),
      ),
    );
  } catch {
    throw tampered();
  }
  const v = new DataView(p.buffer);
  const generation = v.getBigUint64(0);
  const len = v.getBigUint64(8);
  const seals = v.getBigUint64(16);
  if (len > MAX_LEN || generation === MAX_GENERATION || seals > MAX_SEALS) throw tampered();
  if (len > BigInt(Number.MAX_SAFE_INTEGER)) throw tampered();
  return { slot, generation, len: Number(len), seals, flags: v.getBigUint64(24), commitment: p.slice(32, 64), plaintext: p, record };
}

/** The strict reader's rule: both slots authentic or unwritten, the newer wins.
 * @param {Header} header @param {FileKeys} keys @param {Uint8Array} slots @returns {Promise<State>} */
async function pickState(header, keys, slots) {
  const n = header.layout.slotLen;
  const a = await openSlot(header.layout, keys.state, header.hash, 0, slots.subarray(0, n));
  const b = await openSlot(header.layout, keys.state, header.hash, 1, slots.subarray(n, 2 * n));
  if (a && b) return b.generation > a.generation ? b : a;
  if (a || b) return /** @type {State} */ (a || b);
  throw stateTampered();
}

/** An opened, authenticated protected file held in memory. */
export class ProtectedFile {
  /** @param {Uint8Array} file @param {Header} header @param {FileKeys} keys @param {State} state @param {Uint8Array[]} tags */
  constructor(file, header, keys, state, tags) {
    this.file = file;
    this.header = header;
    this.keys = keys;
    this.state = state;
    this.tags = tags;
    /** Who saved this version (version 2 files).
     * @type {import('./writers.js').WrittenBy|null} */
    this.writtenBy = null;
  }

  /** Plaintext bytes. */
  get length() {
    return this.state.len;
  }

  /**
   * Opens `file` with its content key (an HKDF CryptoKey): section 7's
   * steps 1 to 6, and for version 2 the writer of the current state,
   * against `serverKey` (the Ed25519 key that signs use licences),
   * refusing versions signed by a device in `removed` (device id to
   * removal time, from the server's signed list).
   * @param {Uint8Array} file @param {CryptoKey} cek
   * @param {{serverKey?: Uint8Array, removed?: Map<string, number>, now?: number}} [opts]
   * @returns {Promise<ProtectedFile>}
   */
  static async open(file, cek, opts = {}) {
    const header = await parseHeader(file);
    const keys = await deriveKeys(cek, header.body.contentId);
    await authenticateHeader(header, keys);
    if (file.length < header.dataOffset) throw new FormatError('HeaderTruncated', 'the header is truncated');
    const tail = file.subarray(header.bytes.length, header.dataOffset);
    const pad = tail.length - 2 * header.layout.slotLen;
    if (!allZero(tail.subarray(0, pad))) throw new FormatError('HeaderTampered', 'the header was altered (non-zero padding)');
    const state = await pickState(header, keys, tail.subarray(pad));
    let writtenBy = null;
    if (header.layout.writers) {
      if (!opts.serverKey) throw new TypeError("a version 2 file needs the server's key to check its writer");
      writtenBy = await verifyWriter(header, state, state.record, opts.serverKey, FormatError, {
        removed: opts.removed,
        now: opts.now,
      });
    }
    const expected = ciphertextSize(header, state.len);
    if (file.length < expected) {
      throw new FormatError('Truncated', `the file is truncated: ${file.length} bytes, ${expected} expected`, {
        expected,
        actual: file.length,
      });
    }
    if (file.length > expected) {
      throw new FormatError('TrailingData', `the file has ${file.length} bytes but only ${expected} are accounted for`, {
        expected,
        actual: file.length,
      });
    }
    const pf = new ProtectedFile(file, header, keys, state, []);
    pf.writtenBy = writtenBy;
    await pf.loadTags();
    return pf;
  }

  /** Reads every block tag, recomputes the commitment and names the damage
   * when it differs. */
  async loadTags() {
    const n = blocksFor(this.header, this.state.len);
    const acc = new Uint8Array(32);
    for (let i = 0; i < n; i++) {
      const raw = this.rawBlock(i);
      const tag = raw.slice(raw.length - TAG_LEN);
      this.tags.push(tag);
      const t = new Uint8Array(await crypto.subtle.sign('HMAC', this.keys.commit, concat(u64be(i), tag)));
      for (let k = 0; k < 32; k++) acc[k] ^= t[k];
    }
    if (!constantTimeEqual(acc, this.state.commitment)) throw await this.diagnose();
  }

  /** @returns {Promise<FormatError>} */
  async diagnose() {
    const n = this.tags.length;
    const bad = [];
    for (let i = 0; i < n; i++) {
      if (!(await this.openBlock(i, i))) bad.push(i);
    }
    for (const i of bad) {
      for (const j of bad) {
        if (i !== j && (await this.openBlock(i, j))) {
          return new FormatError('BlockMoved', `block ${i} holds block ${j} (blocks were swapped or moved)`, {
            index: i,
            belongs_at: j,
          });
        }
      }
    }
    if (bad.length > 0) {
      return new FormatError('BlockCorrupt', `block ${bad[0]} is corrupt (fails authentication)`, { index: bad[0] });
    }
    return new FormatError('StaleBlock', 'a block was replaced by an older version of itself (replay)');
  }

  /** @param {number} i @returns {Uint8Array} */
  rawBlock(i) {
    const bs = this.header.body.blockSize;
    const from = this.header.dataOffset + i * (bs + OVERHEAD);
    const len = Math.min(bs, this.state.len - i * bs) + OVERHEAD;
    return this.file.subarray(from, from + len);
  }

  /** Decrypts the block stored at `at` as if it were block `asIndex`; null
   * when it does not authenticate there.
   * @param {number} at @param {number} asIndex @returns {Promise<Uint8Array|null>} */
  async openBlock(at, asIndex) {
    const raw = this.rawBlock(at);
    const last = asIndex + 1 === this.tags.length ? 1 : 0;
    const aad = concat(this.header.body.contentId, this.header.hash, u64be(asIndex), [last]);
    try {
      return new Uint8Array(
        await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: raw.subarray(0, NONCE_LEN), additionalData: aad },
          this.keys.block,
          raw.subarray(NONCE_LEN),
        ),
      );
    } catch {
      return null;
    }
  }

  /** Block `i`'s plaintext, after checking its tag is the committed one.
   * @param {number} i @returns {Promise<Uint8Array>} */
  async readBlock(i) {
    const raw = this.rawBlock(i);
    const known = constantTimeEqual(raw.subarray(raw.length - TAG_LEN), this.tags[i]);
    const plain = await this.openBlock(i, i);
    if (!plain) throw new FormatError('BlockCorrupt', `block ${i} is corrupt (fails authentication)`, { index: i });
    if (!known) throw new FormatError('StaleBlock', 'a block was replaced by an older version of itself (replay)');
    return plain;
  }

  /** The whole plaintext, or an error: never part of it.
   * @returns {Promise<Uint8Array>} */
  async readAll() {
    const out = new Uint8Array(this.state.len);
    const bs = this.header.body.blockSize;
    try {
      for (let i = 0; i < this.tags.length; i++) out.set(await this.readBlock(i), i * bs);
    } catch (e) {
      out.fill(0);
      throw e;
    }
    return out;
  }
}

/** Key check, header MAC, publishing-licence signature, in that order so a
 * wrong key is not reported as tampering.
 * @param {Header} header @param {FileKeys} keys */
async function authenticateHeader(header, keys) {
  if (!constantTimeEqual(keys.check, header.body.keyCheck)) {
    throw new FormatError('WrongKey', 'wrong key for this file');
  }
  const split = header.bytes.length - MAC_LEN;
  const macOk = await crypto.subtle.verify('HMAC', keys.header, header.bytes.subarray(split), header.bytes.subarray(0, split));
  if (!macOk) throw new FormatError('HeaderTampered', 'the header was altered (header MAC)');
  if (!(await verifyPublishing(header.body.licence, header.licence))) {
    throw new FormatError('HeaderTampered', 'the header was altered (publishing licence signature)');
  }
}

/** @param {Header} h @param {number} len */
function blocksFor(h, len) {
  return Math.ceil(len / h.body.blockSize);
}

/** @param {Header} h @param {number} len */
function ciphertextSize(h, len) {
  return h.dataOffset + len + blocksFor(h, len) * OVERHEAD;
}
