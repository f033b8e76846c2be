// The viewer's format reader against every vector in tests/vectors/: each
// intact one reads back its plaintext, each damaged one fails with the
// error kind (and block index) its sidecar names, at the stage it names.
// Run with `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';

import { ProtectedFile, parseHeader, importContentKey } from '../app/js/format.js';
import { verifyUseLicence } from '../app/js/licences.js';
import { fromHex, toHex } from '../app/js/bytes.js';

const VECTORS = process.env.RIGHTSFS_VECTORS || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'vectors');
const KEYS = JSON.parse(readFileSync(join(VECTORS, 'keys.json'), 'utf8'));
/** The server's Ed25519 key, for writer records (format version 2). */
const SERVER_KEY = KEYS.server_ed25519_public ? fromHex(KEYS.server_ed25519_public) : undefined;

/** Every sidecar of a vector file (keys.json describes keys, not a file). */
function sidecars() {
  return readdirSync(VECTORS)
    .filter((f) => f.endsWith('.json') && f !== 'keys.json')
    .map((f) => JSON.parse(readFileSync(join(VECTORS, f), 'utf8')))
    .filter((v) => typeof v.file === 'string' && v.content_key);
}

/** @param {any} v */
async function open(v, keyHex = v.content_key) {
  const bytes = new Uint8Array(readFileSync(join(VECTORS, v.file)));
  return ProtectedFile.open(bytes, await importContentKey(fromHex(keyHex)), { serverKey: SERVER_KEY });
}

/** @param {unknown} err @param {any} expected */
function assertKind(err, expected) {
  assert.equal(/** @type {any} */ (err).kind, expected.kind, String(err));
  if (expected.index !== undefined) assert.equal(/** @type {any} */ (err).index, expected.index);
  if (expected.belongs_at !== undefined) assert.equal(/** @type {any} */ (err).belongs_at, expected.belongs_at);
  if (expected.writer !== undefined) assert.equal(/** @type {any} */ (err).writer, expected.writer);
}

const all = sidecars();

test('there are intact and damaged vectors to check', () => {
  assert.ok(all.some((v) => !v.expect_error));
  assert.ok(all.some((v) => v.expect_error));
});

for (const v of all) {
  test(`vector ${v.file}`, async () => {
    if (v.expect_error) {
      const e = v.expect_error;
      if (e.stage === 'licence') {
        // Sound to anyone with the content key: only the use licence the
        // server issued for the registered content tells it is not that.
        const pf = await open(v);
        assert.equal((await pf.readAll()).length, v.plaintext_len);
        assert.equal(e.kind, 'NotTheOwners');
        const ul = { body: fromHex(v.use_licence.body), signature: fromHex(v.use_licence.signature) };
        const expect = {
          contentId: pf.header.body.contentId,
          user: v.use_licence.user,
          deviceId: v.use_licence.device_id,
          now: Math.floor(Date.now() / 1000),
          publishingBody: pf.header.body.licence.body,
        };
        await assert.rejects(verifyUseLicence(ul, SERVER_KEY, expect), (err) => err.code === 'mismatch');
        return;
      }
      if (e.stage === 'open') {
        await assert.rejects(open(v), (err) => (assertKind(err, e), true));
      } else {
        const pf = await open(v);
        await assert.rejects(pf.readAll(), (err) => (assertKind(err, e), true));
      }
      return;
    }
    const bytes = new Uint8Array(readFileSync(join(VECTORS, v.file)));
    assert.equal(bytes.length, v.file_size);
    const header = await parseHeader(bytes);
    assert.equal(toHex(header.hash), v.header_sha256);
    assert.equal(header.bytes.length, v.header_len);
    assert.equal(header.dataOffset, v.data_offset);
    assert.equal(header.body.blockSize, v.block_size);
    assert.equal(toHex(header.body.contentId), v.content_id);
    assert.equal(header.licence.policy.owner, v.owner);
    assert.equal(header.licence.serverUrl, v.server_url);
    assert.equal(header.licence.createdAt, v.created_at);
    assert.equal(header.licence.version, v.licence_version ?? 1);
    const pf = await open(v);
    const plain = await pf.readAll();
    assert.equal(plain.length, v.plaintext_len);
    assert.equal(createHash('sha256').update(plain).digest('hex'), v.plaintext_sha256);
    if (v.plaintext_hex !== undefined) assert.equal(toHex(plain), v.plaintext_hex);
    if (v.written_by !== undefined) assert.equal(pf.writtenBy?.account, v.written_by);
    assert.equal(header.licence.policy.grantsSealed, header.licence.version >= 3);
    if (v.sealed_grants !== undefined) {
      // The viewer learns no grant, and no address is in the file at all.
      assert.deepEqual(header.licence.policy.grants, []);
      assert.ok(header.licence.sealedGrants.toServer.length === 80);
      const text = Buffer.from(bytes).toString('latin1');
      for (const g of v.sealed_grants) assert.ok(!text.includes(g.split(':')[0]), g);
    }
  });
}

test('a wrong content key is told apart from damage', async () => {
  const v = all.find((x) => !x.expect_error);
  const other = all.find((x) => !x.expect_error && x.content_key !== v.content_key);
  await assert.rejects(open(v, other.content_key), (err) => (assertKind(err, { kind: 'WrongKey' }), true));
});

/** A copy of an intact vector with one byte changed at `at`. */
function damaged(v, at) {
  const bytes = new Uint8Array(readFileSync(join(VECTORS, v.file)));
  bytes[at] ^= 1;
  return bytes;
}

test('every byte of the header and state area is covered', async () => {
  const v = all.find((x) => x.file === 'two-and-a-half-blocks.rights');
  const key = () => importContentKey(fromHex(v.content_key));
  const intact = await open(v);
  const { slotLen } = intact.header.layout;
  const older = intact.header.dataOffset - (intact.state.slot === 0 ? 1 : 2) * slotLen;
  // Spread over the prefix, body, MAC, padding and both state slots, but
  // the writer record of the slot that is not current: only the current
  // state's writer is checked (its sealed state is still covered).
  for (let at = 0; at < v.data_offset; at += 7) {
    if (intact.header.layout.writers && at >= older + 94 && at < older + slotLen) continue;
    const bytes = damaged(v, at);
    await assert.rejects(
      (async () => (await ProtectedFile.open(bytes, await key(), { serverKey: SERVER_KEY })).readAll())(),
      (err) => typeof (/** @type {any} */ (err).kind) === 'string',
      `byte ${at}`,
    );
  }
});

test('a version whose writer record was stripped is refused', async () => {
  // Whoever holds the content key can reseal a state; only a writer's
  // record says who saved it, so a version without one never opens.
  const v = all.find((x) => x.file === 'edited-by-editor.rights');
  const intact = await open(v);
  const { slotLen } = intact.header.layout;
  const current = intact.header.dataOffset - (intact.state.slot === 0 ? 2 : 1) * slotLen;
  const bytes = new Uint8Array(readFileSync(join(VECTORS, v.file)));
  bytes.fill(0, current + 92, current + slotLen);
  await assert.rejects(
    (async () => (await ProtectedFile.open(bytes, await importContentKey(fromHex(v.content_key)), { serverKey: SERVER_KEY })).readAll())(),
    (err) => (assertKind(err, { kind: 'WriterUnsigned' }), true),
  );
});

test('a changed ciphertext byte never yields plaintext', async () => {
  const v = all.find((x) => x.file === 'ten-kib.rights');
  for (const at of [v.data_offset, v.data_offset + 12, v.data_offset + 5000, v.file_size - 1]) {
    const bytes = damaged(v, at);
    await assert.rejects(
      (async () => (await ProtectedFile.open(bytes, await importContentKey(fromHex(v.content_key)), { serverKey: SERVER_KEY })).readAll())(),
      (err) => ['BlockCorrupt', 'BlockMoved', 'StaleBlock'].includes(/** @type {any} */ (err).kind),
    );
  }
});

test('plain files and strangers are refused before any key is used', async () => {
  await assert.rejects(parseHeader(new Uint8Array()), (e) => e.kind === 'Empty');
  await assert.rejects(parseHeader(new TextEncoder().encode('hello world, not protected')), (e) => e.kind === 'NotProtected');
  const v = all.find((x) => !x.expect_error);
  const bytes = new Uint8Array(readFileSync(join(VECTORS, v.file)));
  await assert.rejects(parseHeader(bytes.subarray(0, 12)), (e) => e.kind === 'HeaderTruncated');
  await assert.rejects(parseHeader(bytes.subarray(0, 100)), (e) => e.kind === 'HeaderTruncated');
  const future = bytes.slice();
  future[9] = 0x63;
  await assert.rejects(parseHeader(future), (e) => e.kind === 'UnsupportedVersion');
});
