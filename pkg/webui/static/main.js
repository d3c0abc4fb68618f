// The page: opens the sheet named by ?sheet=ID and wires the grid, the
// model, the go-to box, the status line and the token prompt together.

import { parseRef, ref } from './a1.js';
import { Api } from './api.js';
import { SHEET_ID } from './early.js';
import { COL_W, Grid, HEAD_H, HEAD_W, ROW_H } from './grid.js';
import { Sheet } from './sheet.js';
import { editText, isEmpty, parseInput, sameCell } from './values.js';

/** @typedef {import('./values.js').Cell} Cell */


/**
 * @template {Element} T
 * @param {string} sel
 * @param {new () => T} type
 * @returns {T}
 */
function $(sel, type) {
  const e = document.querySelector(sel);
  if (!(e instanceof type)) throw new Error('the page lacks ' + sel);
  return e;
}

/**
 * Asks for a token in the page's dialog.
 * @param {boolean} refused
 * @returns {Promise<string>}
 */
function askToken(refused) {
  const dialog = $('#token-dialog', HTMLDialogElement);
  const form = $('#token-form', HTMLFormElement);
  const input = $('#token-input', HTMLInputElement);
  const msg = $('#token-message', HTMLElement);
  msg.textContent = refused
    ? 'The server refused that token. Enter the right one.'
    : 'This server needs a token (the one it was started with, or a JWT).';
  msg.classList.toggle('error', refused);
  input.value = '';
  return new Promise((resolve) => {
    /** @param {SubmitEvent} e */
    const submit = (e) => {
      e.preventDefault();
      if (!input.value) return;
      form.removeEventListener('submit', submit);
      dialog.close();
      resolve(input.value);
    };
    form.addEventListener('submit', submit);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

/** How long the change feed and the status wait for the first viewport. */
const FEED_DELAY_MS = 300;

/**
 * @param {number} n
 * @param {string} one
 * @param {string} many
 */
const count = (n, one, many) => n + ' ' + (n === 1 ? one : many);

function main() {
  const root = document.documentElement.style;
  root.setProperty('--row-h', ROW_H + 'px');
  root.setProperty('--col-w', COL_W + 'px');
  root.setProperty('--head-h', HEAD_H + 'px');
  root.setProperty('--head-w', HEAD_W + 'px');

  // Escape closes a modal dialog; the page cannot work without the token.
  $('#token-dialog', HTMLDialogElement).addEventListener('cancel', (e) => e.preventDefault());

  const id = new URLSearchParams(location.search).get('sheet');
  const sheetInput = $('#sheet-id', HTMLInputElement);
  const landing = $('#landing', HTMLElement);
  const statusEl = $('[data-role="status"]', HTMLElement);
  const connEl = $('#connection', HTMLElement);
  const factsEl = $('#facts', HTMLElement);
  const noticeEl = $('#notice', HTMLElement);
  if (id === null || id === '') {
    landing.hidden = false;
    connEl.textContent = 'no sheet open';
    sheetInput.focus();
    return;
  }
  sheetInput.value = id;
  if (!SHEET_ID.test(id) || id === '.' || id === '..') {
    landing.hidden = false;
    landing.textContent = 'A sheet id is 1 to 64 letters, digits, dots, dashes or underscores (not "." or "..").';
    connEl.textContent = 'bad sheet id';
    return;
  }
  document.title = id + ' · sheetlog';

  const api = new Api(id, askToken);
  const sheet = new Sheet(api);
  const gotoEl = $('[data-role="goto"]', HTMLInputElement);
  const contentEl = $('#content', HTMLElement);
  const formatEl = $('#format', HTMLElement);

  /**
   * @param {number} row
   * @param {number} col
   * @returns {Cell}
   */
  const current = (row, col) => sheet.cell(row, col) ?? {};

  const grid = new Grid($('#grid-wrap', HTMLElement), {
    shown: (row, col) => sheet.shown(row, col),
    isPending: (row, col) => sheet.isPending(row, col),
    setViewport: (r) => sheet.setViewport(r),
    extent: () => ({ rows: sheet.status?.rowCount ?? 0, cols: sheet.status?.colCount ?? 0 }),
    editText: (row, col) => editText(current(row, col).value),
    commit(row, col, text) {
      const was = current(row, col);
      const value = parseInput(text);
      /** @type {Cell} */
      const cell = {};
      if (value !== undefined) cell.value = value;
      if (was.format !== undefined) cell.format = was.format;
      if (!sameCell(was, cell)) sheet.edit(row, col, cell);
    },
    clear(row, col) {
      const was = sheet.cell(row, col);
      if (was === null || !isEmpty(was)) sheet.edit(row, col, {});
    },
    activeChanged: () => showActive(),
    gotoRequested() {
      gotoEl.focus();
      gotoEl.select();
    },
  }, 'Sheet ' + id);

  function showActive() {
    if (document.activeElement !== gotoEl) gotoEl.value = ref(grid.row, grid.col);
    const c = sheet.cell(grid.row, grid.col);
    contentEl.textContent = c ? editText(c.value) : '';
    formatEl.textContent = c?.format !== undefined ? 'format ' + c.format : '';
  }

  gotoEl.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      const at = parseRef(gotoEl.value);
      if (!at) {
        gotoEl.setAttribute('aria-invalid', 'true');
        noticeEl.textContent = '"' + gotoEl.value.slice(0, 40) + '" is not a cell (A1 to FXSHRXX2147483648)';
        return;
      }
      gotoEl.removeAttribute('aria-invalid');
      noticeEl.textContent = '';
      grid.select(at.row, at.col, 'top');
      grid.focus();
      showActive();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      gotoEl.removeAttribute('aria-invalid');
      noticeEl.textContent = sheet.notice;
      grid.focus();
      showActive();
    }
  });
  gotoEl.addEventListener('blur', () => {
    if (gotoEl.getAttribute('aria-invalid') !== 'true') gotoEl.value = ref(grid.row, grid.col);
  });
  document.addEventListener('keydown', (e) => {
    // Ctrl+G reaches the go-to box from anywhere but the grid's editor.
    if ((e.ctrlKey || e.metaKey) && !e.altKey && (e.key === 'g' || e.key === 'G') && e.target !== grid.editor) {
      e.preventDefault();
      gotoEl.focus();
      gotoEl.select();
    }
  });

  /** @type {Record<string, string>} */
  const words = {
    connecting: 'connecting…',
    live: 'live',
    polling: 'live (polling every second)',
    offline: 'offline: cannot reach the server, reconnecting…',
    unauthorized: 'waiting for a token',
    forbidden: 'not allowed on this sheet',
  };
  function showStatus() {
    const st = sheet.status;
    if (sheet.end >= 0n) statusEl.dataset.end = String(sheet.end);
    statusEl.dataset.connection = sheet.connection;
    const conn = words[sheet.connection] ?? sheet.connection;
    if (connEl.textContent !== conn) connEl.textContent = conn;
    const facts = ['sheet ' + id];
    if (sheet.end >= 0n) facts.push('end ' + sheet.end);
    if (st) {
      facts.push(st.lastSnapshot ? 'last snapshot ' + st.lastSnapshot.sequenceId : 'no snapshot yet');
      facts.push(st.pending.length ? count(st.pending.length, 'workflow', 'workflows') + ' pending' : 'no workflow pending');
    }
    if (sheet.unsent) facts.push(count(sheet.unsent, 'unsent edit', 'unsent edits'));
    factsEl.textContent = facts.join(' · ');
    if (sheet.notice !== noticeEl.textContent) noticeEl.textContent = sheet.notice;
  }

  sheet.onCells = () => {
    grid.invalidate();
    showActive();
  };
  sheet.onStatus = showStatus;
  window.addEventListener('beforeunload', (e) => {
    if (sheet.unsent) e.preventDefault();
  });
  showStatus();
  showActive();
  // The change feed and the status wait for the first viewport (at most
  // FEED_DELAY_MS): on a cold page their requests and replies would take
  // the network and the main thread from the first cells.
  sheet.start(Promise.race([grid.firstDraw, new Promise((r) => setTimeout(r, FEED_DELAY_MS))]));
  grid.focus();
}

performance.mark('sheetlog:main');
main();
performance.mark('sheetlog:main-done');
