// The viewer page: sign in with a mailed code (this browser becomes a
// reader device), open a protected file, get a use licence, verify and
// decrypt everything here, show it. Plaintext never leaves the page.

import { ApiError, Session, startSignIn, verifySignIn, logout, serverKey } from './api.js';
import * as device from './device.js';
import { ProtectedFile, FormatError, parseHeader, importContentKey } from './format.js';
import { LicenceError, verifyUseLicence } from './licences.js';
import { toBase64, toHex, fromBase64 } from './bytes.js';
import { classify, render, download } from './render.js';
import { removedDevices } from './writers.js';
import { linkedFile, fetchSent } from './sent.js';

const $ = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
const VIEWS = ['signin', 'home', 'busy', 'doc', 'stop'];

/** @type {import('./device.js').Device|undefined} */
let current;
const session = new Session(
  async () => (current && (await device.load())?.refreshToken) || current?.refreshToken,
  async (token) => {
    if (!current) return;
    current.refreshToken = token;
    await device.save(current);
  },
);
/** @type {{privateKey: CryptoKey, spki: Uint8Array}|undefined} */
let pendingKey;
let pendingEmail = '';
/** @type {(() => void)|undefined} */
let closeDoc;
/** @type {{kem: string, signing: Uint8Array}|undefined} */
let serverKeys;
/** The file a share mail's link names, opened once signed in. */
let linked = linkedFile(location.hash);
/** The shared file to offer after its protected message is read. */
let nextFile = '';

/** @param {string} view */
function show(view) {
  for (const v of VIEWS) $(v).hidden = v !== view;
  document.body.dataset.view = view;
  $('who').hidden = $('logout').hidden = !current;
  $('who').textContent = current ? current.email : '';
}

/** @param {string} text */
function busy(text) {
  $('busy-text').textContent = text;
  show('busy');
}

/** A page that stops: what happened, and whom to ask.
 * @param {string} kind data-stop value (for tests and styling) @param {string} title @param {string} text @param {string} [owner] */
function stop(kind, title, text, owner) {
  $('stop-title').textContent = title;
  $('stop-text').textContent = text;
  $('stop-owner').hidden = !owner;
  $('stop-owner').textContent = owner ? `Ask the owner: ${owner}` : '';
  document.body.dataset.stop = kind;
  show('stop');
}

// ---- sign-in ----

/** @param {string} [message] */
function signinError(message) {
  $('signin-error').hidden = !message;
  $('signin-error').textContent = message || '';
}

/** @param {boolean} codeStep */
function signinStep(codeStep) {
  $('email-form').hidden = codeStep;
  $('code-form').hidden = !codeStep;
  $('code-to').textContent = pendingEmail;
  signinError();
  show('signin');
  (/** @type {HTMLInputElement} */ ($(codeStep ? 'code' : 'email'))).focus();
}

/** @param {unknown} e @returns {string} */
function signinMessage(e) {
  if (!(e instanceof ApiError)) return 'Something went wrong in this page; reload it and try again.';
  switch (e.code) {
    case 'invalid_code': {
      const wait = /next try is possible in (\d+) s/.exec(e.message);
      if (wait) return `That code is not right. Too many wrong codes: wait ${wait[1]} s before the next try (the code still works).`;
      const left = /\d+ tr(?:y|ies) left/.exec(e.message);
      return `That code is not right${left ? ` (${left[0]})` : ''}. Check the newest mail and type its 8 digits again, or ask for a new code.`;
    }
    case 'code_expired':
      return 'That code has expired. Ask for a new one.';
    case 'rate_limited':
      return `Too many attempts for now. ${e.message}`;
    default:
      return e.message;
  }
}

$('email-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  pendingEmail = (/** @type {HTMLInputElement} */ ($('email'))).value.trim();
  try {
    await startSignIn(pendingEmail);
    signinStep(true);
  } catch (e) {
    signinError(signinMessage(e));
  }
});

$('code-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = /** @type {HTMLInputElement} */ ($('code'));
  const code = input.value.replace(/\s+/g, '');
  signinError();
  try {
    // One key pair per sign-in attempt on this page; it is kept only if
    // the server registers it.
    pendingKey ??= await device.generate();
    const t = await verifySignIn({
      email: pendingEmail,
      code,
      device_name: device.deviceName(),
      device_public_key: toBase64(pendingKey.spki),
    });
    current = { email: t.email, deviceId: t.device_id, refreshToken: t.refresh_token, privateKey: pendingKey.privateKey };
    await device.save(current);
    session.access = t.access_token;
    pendingKey = undefined;
    input.value = '';
    show('home');
    openLinked();
  } catch (e) {
    signinError(signinMessage(e));
    if (e instanceof ApiError && e.code === 'code_expired') input.value = '';
  }
});

$('code-restart').addEventListener('click', () => signinStep(false));

// ---- sign-out ----

$('logout').addEventListener('click', async () => {
  const d = current;
  if (!d) return;
  busy('Signing out…');
  closeDoc?.();
  // Remove the device on the server (its tokens die with it), revoke the
  // refresh token in case that failed, then destroy the key here.
  await session.call('DELETE', `/v1/devices/${encodeURIComponent(d.deviceId)}`).catch(() => {});
  await logout(d.refreshToken).catch(() => {});
  await device.forget();
  current = undefined;
  session.access = undefined;
  signinStep(false);
});

// ---- opening a file ----

const fileInput = /** @type {HTMLInputElement} */ ($('file'));
fileInput.addEventListener('change', () => {
  const f = fileInput.files?.[0];
  fileInput.value = '';
  if (f) openFile(f);
});
const drop = $('drop');
drop.addEventListener('dragover', (ev) => {
  ev.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (ev) => {
  ev.preventDefault();
  drop.classList.remove('over');
  const f = ev.dataTransfer?.files?.[0];
  if (f) openFile(f);
});
for (const id of ['close-doc', 'stop-back']) {
  $(id).addEventListener('click', () => {
    closeDoc?.();
    closeDoc = undefined;
    nextFile = '';
    show(current ? 'home' : 'signin');
  });
}

/** @param {File} f */
async function openFile(f) {
  nextFile = '';
  busy('Reading the file…');
  const bytes = new Uint8Array(await f.arrayBuffer());
  await openBytes(bytes, f.name.replace(/\.rights$/i, ''));
}

async function keysOfServer() {
  if (!serverKeys) {
    const k = await serverKey();
    const signing = Uint8Array.from(k.signing_public_key.match(/../g) || [], (h) => parseInt(h, 16));
    serverKeys = { kem: k.kem_public_key, signing };
  }
  return serverKeys;
}

/** Seconds the list of removed devices is used before it is fetched again. */
const REMOVED_MAX_AGE = 3600;
/** @type {{at: number, devices: Map<string, number>}|undefined} */
let removedList;

/** The devices removed from their accounts, from the server's signed
 * list (every page checked): every version one of them signed is
 * refused. Fetched again once an hour; the last one is kept when the
 * server does not answer. */
async function removedOfServer(/** @type {Uint8Array} */ signing) {
  const now = Math.floor(Date.now() / 1000);
  if (removedList && now - removedList.at < REMOVED_MAX_AGE) return removedList.devices;
  try {
    const pages = [];
    let after = '';
    for (;;) {
      const query = after ? `?after=${encodeURIComponent(after)}` : '';
      const page = await session.call('GET', `/v1/devices/removed${query}`);
      pages.push(fromBase64(page.list));
      if (!page.next) break;
      after = page.next;
    }
    removedList = { at: now, devices: await removedDevices(pages, signing) };
  } catch (e) {
    if (!removedList) throw e;
  }
  return removedList.devices;
}

/**
 * @param {Uint8Array} bytes @param {string} name
 */
export async function openBytes(bytes, name) {
  const d = current;
  if (!d) return signinStep(false);
  let header;
  try {
    header = await parseHeader(bytes);
  } catch (e) {
    return formatStop(e);
  }
  const owner = header.licence.policy.owner;
  try {
    busy('Asking for a licence…');
    const keys = await keysOfServer();
    if (toHex(header.licence.serverKey) !== keys.kem) {
      return stop(
        'other_server',
        'This file belongs to another server',
        `Its licences come from ${header.licence.serverUrl}, not from this server. Open it there, or with the rights app.`,
        owner,
      );
    }
    const signed = await session.call('POST', `/v1/content/${toHex(header.body.contentId)}/licence`, {});
    const ul = await verifyUseLicence(
      { body: fromBase64(signed.body), signature: fromBase64(signed.signature) },
      keys.signing,
      {
        contentId: header.body.contentId,
        user: d.email,
        deviceId: d.deviceId,
        now: Math.floor(Date.now() / 1000),
        publishingBody: header.body.licence.body,
      },
    );
    busy('Decrypting…');
    const cek = await importContentKey(await device.unwrap(d.privateKey, ul.wrappedKey));
    const removed = await removedOfServer(keys.signing);
    const pf = await ProtectedFile.open(bytes, cek, { serverKey: keys.signing, removed });
    const plain = await pf.readAll();
    showDocument(plain, name, ul.rights, ul.owner ?? owner, pf.writtenBy);
  } catch (e) {
    if (e instanceof FormatError) return formatStop(e);
    if (e instanceof LicenceError) {
      return stop('bad_licence', 'The licence could not be checked', `${e.message}. Nothing was shown.`, owner);
    }
    if (e instanceof ApiError) return apiStop(e, header, owner);
    return stop('error', 'This file could not be opened', String(e instanceof Error ? e.message : e), owner);
  }
}

/** @param {unknown} e */
function formatStop(e) {
  if (e instanceof FormatError && (e.kind === 'NotProtected' || e.kind === 'Empty')) {
    return stop('not_protected', 'This is not a protected file', 'Choose a file that ends in .rights.');
  }
  if (e instanceof FormatError && e.kind === 'UnsupportedVersion') {
    return stop('unsupported', 'This file is newer than this viewer', `${e.message}. Reload the page, or use the rights app.`);
  }
  if (e instanceof FormatError && e.kind === 'WriterRemoved') {
    return stop(
      'removed_device',
      'Saved by a removed device',
      `${e.message}. None of this version is shown: ask ${/** @type {any} */ (e).writer} to save it again from a device of theirs.`,
    );
  }
  const detail = e instanceof Error ? e.message : String(e);
  return stop('damaged', 'This file is damaged', `It fails its integrity checks (${detail}), so none of it is shown. Ask the sender for a new copy.`);
}

/**
 * @param {ApiError} e @param {import('./format.js').Header} header @param {string} owner
 */
async function apiStop(e, header, owner) {
  if (e.code === 'revoked') {
    return stop('revoked', 'Access to this file was revoked', 'Its owner withdrew it: nobody but the owner can open it now.', owner);
  }
  if (e.code === 'no_rights') {
    const now = Math.floor(Date.now() / 1000);
    const p = header.licence.policy;
    const mine = p.grants.find((g) => g.to === current?.email || g.to === `*@${current?.email.split('@')[1]}`);
    const lapsed = (p.expires !== null && p.expires <= now) || (mine && mine.expires !== null && mine.expires <= now);
    if (lapsed) {
      return stop('expired', 'Your access to this file has expired', 'Ask its owner to share it with you again.', owner);
    }
    return stop('no_rights', 'This file is not shared with you', `You are signed in as ${current?.email}. Ask its owner to share it with that address.`, owner);
  }
  if (e.code === 'not_registered') {
    return stop('not_registered', 'This server does not know this file', 'It was never registered here. Ask its owner.', owner);
  }
  if (e.status === 401) {
    // The device was removed (from `rights devices`): its key is useless.
    await device.forget();
    current = undefined;
    return stop('signed_out', 'This browser is no longer signed in', 'It was removed from your devices or its sign-in expired. Sign in again.');
  }
  return stop('error', 'The server refused', e.message, owner);
}

/**
 * @param {Uint8Array} plain @param {string} name @param {string[]} rights @param {string} owner
 * @param {import('./writers.js').WrittenBy|null} writtenBy
 */
function showDocument(plain, name, rights, owner, writtenBy) {
  const canExport = rights.includes('export');
  const what = classify(plain, name);
  $('doc-name').textContent = name;
  const saved = writtenBy && !writtenBy.owner ? ` · saved by ${writtenBy.account}` : '';
  $('doc-meta').textContent = `Owner ${owner}${saved} · your rights: ${rights.join(', ')}`;
  const content = $('content');
  closeDoc?.();
  closeDoc = render(content, plain, what, canExport);
  const textual = what.kind === 'text' || what.kind === 'markdown';
  $('mono-toggle').hidden = !textual;
  const mono = /** @type {HTMLInputElement} */ ($('mono'));
  mono.checked = what.kind === 'text' && /\.(c|h|rs|py|js|ts|json|csv|log|sh|toml|ya?ml)$/i.test(name);
  content.classList.toggle('mono', mono.checked);
  $('view-only').hidden = canExport;
  $('download').hidden = !canExport;
  $('next').hidden = !nextFile;
  $('download').onclick = canExport ? () => download(plain, name, what.type) : null;
  show('doc');
}

$('mono').addEventListener('change', (ev) => {
  $('content').classList.toggle('mono', (/** @type {HTMLInputElement} */ (ev.target)).checked);
});

// Without export, copying, dragging and the context menu are refused on the content.
for (const type of ['copy', 'cut', 'contextmenu', 'dragstart']) {
  $('content').addEventListener(type, (ev) => {
    if ($('content').classList.contains('no-copy')) ev.preventDefault();
  });
}

/** Opens what a share mail linked to, once: its message first, if any. */
async function openLinked() {
  const l = linked;
  if (!l || !current) return;
  linked = undefined;
  history.replaceState(null, '', location.pathname);
  nextFile = l.message ? l.file : '';
  await openSentFile(l.message ?? l.file);
}

$('next').addEventListener('click', () => {
  const id = nextFile;
  nextFile = '';
  if (id) openSentFile(id);
});

/** @param {string} id */
async function openSentFile(id) {
  busy('Fetching the file…');
  try {
    const f = await fetchSent(session, id);
    await openBytes(f.bytes, f.name.replace(/\.rights$/i, ''));
  } catch (e) {
    if (e instanceof ApiError && e.code === 'file_gone') {
      return stop('file_gone', 'The server no longer keeps this file', `${e.message}. If you have the attachment from the mail, open it here.`);
    }
    if (e instanceof ApiError && (e.code === 'revoked' || e.code === 'no_rights')) {
      return stop(e.code, e.code === 'revoked' ? 'Access to this file was revoked' : 'This file is not shared with you', e.message);
    }
    return stop('error', 'The file could not be fetched', e instanceof Error ? e.message : String(e));
  }
}

// A link followed while the page is open only changes the fragment.
window.addEventListener('hashchange', () => {
  linked = linkedFile(location.hash);
  if (!linked) return;
  closeDoc?.();
  closeDoc = undefined;
  if (current) openLinked();
  else signinStep(false);
});

async function init() {
  try {
    current = await device.load();
  } catch {
    current = undefined;
  }
  if (current) {
    show('home');
    openLinked();
  } else signinStep(false);
}

init();
