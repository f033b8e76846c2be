// A reader for the postcard wire format (docs/FORMAT.md section 3): the
// encoding of the header body and of both licences. Only decoding, only the
// shapes the format uses; every read is bounds-checked so a hostile file
// fails with a clear error instead of reading past its end.

export class DecodeError extends Error {}

export class Reader {
  /** @param {Uint8Array} bytes */
  constructor(bytes) {
    this.bytes = bytes;
    this.pos = 0;
  }

  /** @returns {boolean} */
  done() {
    return this.pos === this.bytes.length;
  }

  /** @param {number} n @returns {Uint8Array} */
  take(n) {
    if (!Number.isSafeInteger(n) || n < 0 || this.pos + n > this.bytes.length) {
      throw new DecodeError('ends early');
    }
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** @returns {number} */
  u8() {
    return this.take(1)[0];
  }

  /** An unsigned LEB128 varint of at most `maxBits` bits, as a BigInt.
   * @param {number} maxBits @returns {bigint} */
  varint(maxBits) {
    let v = 0n;
    const maxBytes = Math.ceil(maxBits / 7);
    for (let i = 0; i < maxBytes; i++) {
      const b = this.u8();
      v |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) {
        if (v >> BigInt(maxBits) !== 0n) throw new DecodeError('varint out of range');
        return v;
      }
    }
    throw new DecodeError('varint too long');
  }

  /** @returns {number} */
  u16() {
    return Number(this.varint(16));
  }

  /** @returns {number} */
  u32() {
    return Number(this.varint(32));
  }

  /** A zigzag i64; timestamps fit a JavaScript number exactly.
   * @returns {number} */
  i64() {
    const z = this.varint(64);
    const v = (z >> 1n) ^ -(z & 1n);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new DecodeError('integer out of range');
    }
    return Number(v);
  }

  /** @returns {number} */
  length() {
    const n = this.varint(64);
    if (n > BigInt(this.bytes.length - this.pos)) throw new DecodeError('length past the end');
    return Number(n);
  }

  /** Length-prefixed bytes. @returns {Uint8Array} */
  bytesField() {
    return this.take(this.length());
  }

  /** A length-prefixed UTF-8 string. @returns {string} */
  string() {
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytesField());
  }

  /** @template T @param {() => T} item @returns {T[]} */
  seq(item) {
    const n = this.length();
    const out = [];
    for (let i = 0; i < n; i++) out.push(item());
    return out;
  }

  /** @template T @param {() => T} item @returns {T|null} */
  option(item) {
    const tag = this.u8();
    if (tag === 0) return null;
    if (tag === 1) return item();
    throw new DecodeError('bad option tag');
  }

  /** @returns {boolean} */
  bool() {
    const b = this.u8();
    if (b > 1) throw new DecodeError('bad bool');
    return b === 1;
  }
}
