// The page's first /cells requests, sent before the rest of it has loaded.
//
// A page opened in a fresh browser spends most of its first few hundred
// milliseconds fetching and compiling its modules; the cells it will draw
// first can be on their way meanwhile. This module imports only two small
// ones, so the browser runs it as soon as they arrive (index.html loads
// it before main.js): for the sheet in the address it asks for the tiles
// of the first window, exactly as the model (sheet.js) will for a sheet
// it has not loaded yet, and keeps each reply for the Api, which takes it
// (takeEarly) instead of sending the same request again. A reply nobody
// takes within EARLY_TTL_MS is dropped.

import { ref } from './a1.js';
import { firstWindow, MAX_RANGE_CELLS, TILE_COLS, TILE_ROWS } from './dims.js';

/** Sheet ids as the API takes them (rest-api.md). */
export const SHEET_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** Where the bearer token is kept (this tab, this session). */
export const TOKEN_KEY = 'sheetlog.token';
const EARLY_TTL_MS = 10000;
/** The timeout of a request (api.js uses it too). */
export const REQUEST_TIMEOUT_MS = 15000;

/**
 * A reply read to its end: the body is read as it arrives, so that the
 * Api, which takes it while the page's main module runs, finds it whole
 * and the first cells are in the model before the first frame.
 * @typedef {{res: Response, text: string}} EarlyReply
 */

/** @type {Map<string, {token: string, reply: Promise<EarlyReply>}>} */
const early = new Map();

/**
 * The sheet id in the page's address, or null if it has none or an
 * invalid one.
 * @returns {string | null}
 */
export function sheetInAddress() {
  const id = new URLSearchParams(location.search).get('sheet');
  if (id === null || !SHEET_ID.test(id) || id === '.' || id === '..') return null;
  return id;
}

/** @returns {string} the token kept for this tab, '' for none */
export function storedToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

/**
 * The URL of a sheet's API.
 * @param {string} sheet
 * @param {URL | string} [base]
 */
export function sheetURL(sheet, base = new URL('./', location.href)) {
  return new URL('v1/sheets/' + encodeURIComponent(sheet), base);
}

/**
 * The URL of a request to the sheet's API, as the Api builds it.
 * @param {URL} sheet the sheet's URL
 * @param {string} path '' for the status, 'log', 'cells'
 * @param {Record<string, string>} [query]
 */
export function requestURL(sheet, path, query = {}) {
  const url = new URL(sheet.href + (path ? '/' + path : ''));
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  return url;
}

/**
 * The headers of a request.
 * @param {string} token
 * @param {boolean} body
 * @returns {Record<string, string>}
 */
export function requestHeaders(token, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body) headers['Content-Type'] = 'application/json';
  return headers;
}

/**
 * The ranges the model asks /cells for when it is first shown the window
 * (no tile loaded yet): whole tiles, a request per row of tiles, each of
 * at most MAX_RANGE_CELLS cells.
 * @param {{row0: number, col0: number, row1: number, col1: number}} w
 * @returns {string[]}
 */
export function firstRanges(w) {
  const perRequest = Math.max(1, Math.floor(MAX_RANGE_CELLS / (TILE_ROWS * TILE_COLS)));
  const tr0 = Math.floor(w.row0 / TILE_ROWS), tr1 = Math.floor(w.row1 / TILE_ROWS);
  const tc0 = Math.floor(w.col0 / TILE_COLS), tc1 = Math.floor(w.col1 / TILE_COLS);
  const out = [];
  for (let tr = tr0; tr <= tr1; tr++) {
    for (let c = tc0; c <= tc1; c += perRequest) {
      const c1 = Math.min(tc1, c + perRequest - 1);
      out.push(ref(tr * TILE_ROWS, c * TILE_COLS) + ':' + ref(tr * TILE_ROWS + TILE_ROWS - 1, c1 * TILE_COLS + TILE_COLS - 1));
    }
  }
  return out;
}

/**
 * The reply of a GET sent early with this URL and token, once: null when
 * there is none (never sent, already taken, expired, another token).
 * @param {string} href
 * @param {string} token
 * @returns {Promise<EarlyReply> | null}
 */
export function takeEarly(href, token) {
  const e = early.get(href);
  if (!e) return null;
  early.delete(href);
  return e.token === token ? e.reply : null;
}

function start() {
  performance.mark('sheetlog:early');
  const sheet = sheetInAddress();
  if (sheet === null) return;
  const token = storedToken();
  const base = sheetURL(sheet);
  for (const range of firstRanges(firstWindow(window.innerWidth, window.innerHeight))) {
    const url = requestURL(base, 'cells', { range });
    const reply = fetch(url, {
      method: 'GET', headers: requestHeaders(token, false), cache: 'no-store', credentials: 'omit',
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    }).then(async (res) => {
      const text = await res.text();
      performance.mark('sheetlog:early-reply');
      return { res, text };
    });
    // A failure is the Api's to report, if it takes the reply.
    reply.catch(() => {});
    early.set(url.href, { token, reply });
    setTimeout(() => early.delete(url.href), EARLY_TTL_MS);
  }
}

// Not in the tests' Node, which imports this module for its functions.
if (typeof window !== 'undefined' && typeof document !== 'undefined') start();
