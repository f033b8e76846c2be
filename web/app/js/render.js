// Showing decrypted content: text and Markdown as text, images and PDF
// through blob: URLs (made here, revoked when the document closes), and
// anything else as a download only when the licence grants export.

import { browserName } from './device.js';

/** @typedef {'text'|'markdown'|'image'|'pdf'|'other'} Kind */

const IMAGE_TYPES = [
  { magic: [0x89, 0x50, 0x4e, 0x47], type: 'image/png' },
  { magic: [0xff, 0xd8, 0xff], type: 'image/jpeg' },
  { magic: [0x47, 0x49, 0x46, 0x38], type: 'image/gif' },
];

/** @param {Uint8Array} b @param {number[]} m */
function startsWith(b, m) {
  return m.every((x, i) => b[i] === x);
}

/** What the plaintext is, from its bytes first and its name second.
 * @param {Uint8Array} plain @param {string} name @returns {{kind: Kind, type: string}} */
export function classify(plain, name) {
  const lower = name.toLowerCase();
  if (startsWith(plain, [0x25, 0x50, 0x44, 0x46, 0x2d])) return { kind: 'pdf', type: 'application/pdf' };
  for (const t of IMAGE_TYPES) if (startsWith(plain, t.magic)) return { kind: 'image', type: t.type };
  if (startsWith(plain, [0x52, 0x49, 0x46, 0x46]) && startsWith(plain.subarray(8), [0x57, 0x45, 0x42, 0x50])) {
    return { kind: 'image', type: 'image/webp' };
  }
  if (isText(plain)) {
    if (/\.(md|markdown)$/.test(lower)) return { kind: 'markdown', type: 'text/markdown' };
    return { kind: 'text', type: 'text/plain' };
  }
  return { kind: 'other', type: 'application/octet-stream' };
}

/** UTF-8 without NUL bytes. @param {Uint8Array} b */
function isText(b) {
  if (b.includes(0)) return false;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/**
 * Puts the content into `el`; returns a function that releases it.
 * @param {HTMLElement} el @param {Uint8Array} plain @param {{kind: Kind, type: string}} what
 * @param {boolean} canExport @returns {() => void}
 */
export function render(el, plain, what, canExport) {
  el.replaceChildren();
  el.classList.toggle('no-copy', !canExport);
  /** @type {string[]} */
  const urls = [];
  const blobUrl = () => {
    const u = URL.createObjectURL(new Blob([plain], { type: what.type }));
    urls.push(u);
    return u;
  };
  if (what.kind === 'text' || what.kind === 'markdown') {
    const pre = document.createElement('pre');
    pre.id = 'text';
    pre.textContent = new TextDecoder().decode(plain);
    el.append(pre);
  } else if (what.kind === 'image') {
    const img = document.createElement('img');
    img.id = 'image';
    img.alt = 'the protected image';
    img.draggable = canExport;
    img.src = blobUrl();
    el.append(img);
  } else if (what.kind === 'pdf') {
    // The browser's own PDF viewer: no third-party code to vendor and keep
    // patched. Without export its toolbar (save, print) is hidden; that is
    // a request to the viewer, not a guarantee, as the page says.
    const frame = document.createElement('iframe');
    frame.id = 'pdf';
    frame.title = 'the protected PDF';
    frame.src = blobUrl() + (canExport ? '' : '#toolbar=0');
    if (!canExport && browserName() === 'Firefox') {
      // Firefox's viewer (pdf.js) ignores toolbar=0, and the page cannot
      // reach into it (it runs with a principal of its own), so its
      // toolbar is cut off instead: the frame sits one toolbar higher
      // in a box that clips it (app.css, .pdf-clip).
      const clip = document.createElement('div');
      clip.className = 'pdf-clip';
      clip.append(frame);
      el.append(clip);
    } else el.append(frame);
  } else {
    const p = document.createElement('p');
    p.id = 'other';
    p.textContent = canExport
      ? 'This kind of file cannot be shown here. You may export it: use Download to save the decrypted file.'
      : 'This kind of file cannot be shown in the browser, and you may not download it. Open it with the rights app on a computer.';
    el.append(p);
  }
  return () => {
    urls.forEach((u) => URL.revokeObjectURL(u));
    el.replaceChildren();
  };
}

/** Saves the plaintext as a file (only offered with export).
 * @param {Uint8Array} plain @param {string} name @param {string} type */
export function download(plain, name, type) {
  const url = URL.createObjectURL(new Blob([plain], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
