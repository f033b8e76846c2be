// The viewer's checks of who saved a version beyond the certificates: the
// server's signed list of removed devices (every version one of them
// signed is refused), and record times no later than the clock allows.
// Run with `node --test web/test/`.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createPrivateKey, sign } from 'node:crypto';

import { ProtectedFile, importContentKey } from '../app/js/format.js';
import { removedDevices, removedDevicePage, MAX_CLOCK_SKEW } from '../app/js/writers.js';
import { concat, fromHex, utf8 } from '../app/js/bytes.js';

const VECTORS = process.env.RIGHTSFS_VECTORS || join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'vectors');
const KEYS = JSON.parse(readFileSync(join(VECTORS, 'keys.json'), 'utf8'));
const SERVER_KEY = fromHex(KEYS.server_ed25519_public);
/** The vectors' server signing key, as the server signs the list with it. */
const SERVER_SECRET = createPrivateKey({
  key: Buffer.from('302e020100300506032b657004220420' + KEYS.server_ed25519_secret, 'hex'),
  format: 'der',
  type: 'pkcs8',
});

/** @param {number} n */
function i64(n) {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(n));
  return b;
}
/** @param {number} n */
function u32(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n);
  return b;
}
/** @param {string} s */
function str(s) {
  const b = utf8(s);
  return concat([b.length], b);
}

/** A page as the server signs it (docs/FORMAT.md, "Removed devices").
 * @param {string} after @param {boolean} last @param {[string, number][]} devices */
function page(after, last, devices, key = SERVER_SECRET) {
  const body = concat(
    [1],
    i64(1_767_225_600),
    str(after),
    [last ? 1 : 0],
    u32(devices.length),
    ...devices.map(([id, at]) => concat(str(id), i64(at))),
  );
  const sig = sign(null, concat(utf8('rightsfs removed devices v1\0'), body), key);
  return concat(u32(body.length), body, new Uint8Array(sig));
}

/** @param {string} name */
function vector(name) {
  return JSON.parse(readFileSync(join(VECTORS, name.replace('.rights', '.json')), 'utf8'));
}

/** @param {any} v @param {object} opts */
async function open(v, opts) {
  const bytes = new Uint8Array(readFileSync(join(VECTORS, v.file)));
  return ProtectedFile.open(bytes, await importContentKey(fromHex(v.content_key)), { serverKey: SERVER_KEY, ...opts });
}

test('a whole signed list of removed devices decodes', async () => {
  const first = page('', false, [['0a', 10], ['7f', 20]]);
  const second = page('7f', true, [['c3', 30]]);
  const list = await removedDevices([first, second], SERVER_KEY);
  assert.deepEqual([...list], [['0a', 10], ['7f', 20], ['c3', 30]]);
  const one = await removedDevicePage(second, SERVER_KEY);
  assert.deepEqual(one, { issuedAt: 1_767_225_600, after: '7f', last: true, devices: [{ deviceId: 'c3', removedAt: 30 }] });
});

test('a list changed, cut short, out of order or signed by another key is refused', async () => {
  const good = page('', true, [['0a', 10], ['7f', 20]]);
  for (let at = 0; at < good.length; at++) {
    const bad = good.slice();
    bad[at] ^= 1;
    await assert.rejects(removedDevices([bad], SERVER_KEY), `byte ${at}`);
  }
  const other = createPrivateKey({ key: Buffer.from('302e020100300506032b657004220420' + '11'.repeat(32), 'hex'), format: 'der', type: 'pkcs8' });
  await assert.rejects(removedDevices([page('', true, [['0a', 10]], other)], SERVER_KEY));
  await assert.rejects(removedDevices([page('', true, [['7f', 10], ['0a', 20]])], SERVER_KEY));
  // Not the last page, and nothing after it: the list is not whole.
  await assert.rejects(removedDevices([page('', false, [['0a', 10]])], SERVER_KEY));
  // A second page that does not start where the first ended.
  await assert.rejects(removedDevices([page('', false, [['0a', 10]]), page('7f', true, [])], SERVER_KEY));
});

test('a version saved by a listed device is refused, naming the writer, the device and the removal', async () => {
  const v = vector('edited-by-editor.rights');
  const intact = await open(v, {});
  const device = intact.writtenBy.deviceId;
  const removed = await removedDevices([page('', true, [[device, 1_767_225_600]])], SERVER_KEY);
  await assert.rejects(open(v, { removed }), (err) => {
    const e = /** @type {any} */ (err);
    assert.equal(e.kind, 'WriterRemoved', String(err));
    assert.equal(e.writer, v.written_by);
    assert.equal(e.device, device);
    assert.equal(e.removed_at, 1_767_225_600);
    assert.match(e.message, new RegExp(`device ${device}, which was removed from the account on 2026-01-01T00:00:00Z`));
    return true;
  });
  // Another device's removal changes nothing.
  const others = await removedDevices([page('', true, [['someone-elses-phone', 1]])], SERVER_KEY);
  assert.equal((await open(v, { removed: others })).writtenBy.account, v.written_by);
});

test('a version claiming a time past the clock and its skew is refused', async () => {
  const v = vector('edited-by-editor.rights');
  const { time } = (await open(v, {})).writtenBy;
  await open(v, { now: time - MAX_CLOCK_SKEW });
  await assert.rejects(open(v, { now: time - MAX_CLOCK_SKEW - 1 }), (err) => {
    assert.equal(/** @type {any} */ (err).kind, 'WriterNotAllowed', String(err));
    assert.match(String(err), /later than this computer's clock allows/);
    return true;
  });
});
