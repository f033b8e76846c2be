// The viewer's check of a use licence: the server's Ed25519 signature over
// the domain tag and body, then content, user, device and validity, before
// its key may be unwrapped. Licences are encoded here as the server does.

import { test } from 'node:test';
import assert from 'node:assert/strict';

import { verifyUseLicence, ed25519Verify, publishingLicenceHash } from '../app/js/licences.js';
import { concat, utf8, fromHex } from '../app/js/bytes.js';

/** postcard: unsigned LEB128 */
function varint(n) {
  let v = BigInt(n);
  const out = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Uint8Array.from(out);
}
const zigzag = (n) => varint((BigInt(n) << 1n) ^ (BigInt(n) < 0n ? -1n : 0n));
const str = (s) => concat(varint(utf8(s).length), utf8(s));
const bytes = (b) => concat(varint(b.length), b);

const CONTENT = fromHex('00112233445566778899aabbccddeeff');

const PL_BODY = utf8('a publishing licence body');

/** A use licence body; version 2 appends the registered owner and the
 * hash of the registered publishing licence. */
async function body({
  user = 'bob@example.com',
  device = 'dev-1',
  until = Math.floor(Date.now() / 1000) + 600,
  version = 1,
  plBody = PL_BODY,
} = {}) {
  const tail = version === 2 ? concat(str('alice@example.com'), await publishingLicenceHash(plBody)) : new Uint8Array();
  return concat(
    [version],
    CONTENT,
    str(user),
    str(device),
    varint(1),
    str('view'),
    zigzag(1767225600),
    zigzag(until),
    bytes(new Uint8Array(256).fill(7)),
    tail,
  );
}

async function server() {
  const pair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const pub = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
  const sign = async (b) =>
    new Uint8Array(await crypto.subtle.sign('Ed25519', pair.privateKey, concat(utf8('rightsfs use licence v1\0'), b)));
  return { pub, sign };
}

const expect = () => ({
  contentId: CONTENT,
  user: 'bob@example.com',
  deviceId: 'dev-1',
  now: Math.floor(Date.now() / 1000),
  publishingBody: PL_BODY,
});

test('a licence signed by the server for this device verifies', async () => {
  const s = await server();
  const b = await body();
  const ul = await verifyUseLicence({ body: b, signature: await s.sign(b) }, s.pub, expect());
  assert.deepEqual(ul.rights, ['view']);
  assert.equal(ul.wrappedKey.length, 256);
});

test('a version 2 licence names the registered owner and licence', async () => {
  const s = await server();
  const b = await body({ version: 2 });
  const ul = await verifyUseLicence({ body: b, signature: await s.sign(b) }, s.pub, expect());
  assert.equal(ul.owner, 'alice@example.com');
  assert.equal(ul.licenceHash.length, 32);
});

test('a changed body, another server or a moved signature is refused', async () => {
  const s = await server();
  const other = await server();
  const b = await body();
  const sig = await s.sign(b);
  const changed = b.slice();
  changed[changed.length - 1] ^= 1;
  const refused = (e) => e.code === 'bad_signature';
  await assert.rejects(verifyUseLicence({ body: changed, signature: sig }, s.pub, expect()), refused);
  await assert.rejects(verifyUseLicence({ body: b, signature: sig }, other.pub, expect()), refused);
  await assert.rejects(verifyUseLicence({ body: b, signature: await other.sign(b) }, s.pub, expect()), refused);
});

test('a licence for another device, user, or past its validity is refused', async () => {
  const s = await server();
  for (const [b, code] of [
    [await body({ device: 'dev-2' }), 'mismatch'],
    [await body({ user: 'eve@example.com' }), 'mismatch'],
    [await body({ until: 1767225601 }), 'expired'],
    [await body({ version: 3 }), 'malformed'],
    [await body({ version: 2, plBody: utf8('another licence for the same id') }), 'mismatch'],
  ]) {
    await assert.rejects(verifyUseLicence({ body: b, signature: await s.sign(b) }, s.pub, expect()), (e) => e.code === code);
  }
});

test('weak Ed25519 keys are refused even with a signature WebCrypto would take', async () => {
  // The identity point as key and signature point, with S = 0: verifies
  // for every message under a non-strict verifier.
  const identity = fromHex('0100000000000000000000000000000000000000000000000000000000000000');
  const sig = concat(identity, new Uint8Array(32));
  assert.equal(await ed25519Verify(identity, sig, utf8('anything')), false);
});
