// The /v1 API of one sheet, on the origin the page came from. Errors are
// ApiError (the server answered with an error body) or NetworkError (no
// answer: the server is away, or the reply was lost), so callers can tell
// "refused" from "unknown".
//
// Authentication: a bearer token, asked for when the server answers 401
// and kept in sessionStorage only (this tab, this session). Every request
// that meets a 401 waits for the one prompt and is then sent again.

/** @typedef {{sequenceId: string, blobId: string}} SnapshotRef */
/**
 * @typedef {{type: string, row: number, column: number, value?: unknown, format?: unknown,
 *   snapshot?: string, pending?: string, history?: string}} LogEntry
 * @typedef {{startSequenceId: string, endSequenceId: string, isComplete: boolean,
 *   entries: LogEntry[], lastSnapshot?: SnapshotRef}} LogPage
 * @typedef {{endSequenceId: string, rowCount: number, colCount: number,
 *   cells: Record<string, {value?: unknown, format?: unknown}>}} CellsReply
 * @typedef {{sheet: string, startSequenceId: string, endSequenceId: string,
 *   lastSnapshot: SnapshotRef | null, pending: {sequenceId: string, workflow: string}[],
 *   rowCount: number, colCount: number}} StatusReply
 * @typedef {{sequenceId: string, endSequenceId?: string, lastSnapshot?: SnapshotRef}} AppendReply
 */

import { REQUEST_TIMEOUT_MS, requestHeaders, requestURL, sheetURL, storedToken, takeEarly, TOKEN_KEY } from './early.js';

/** The server answered with an error. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} type
   * @param {string} message
   * @param {Record<string, unknown>} body
   */
  constructor(status, type, message, body) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

/** No answer came: the request may or may not have reached the server. */
export class NetworkError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'NetworkError';
  }
}


/**
 * Asks the user for a token; resolves with what they entered.
 * @callback TokenPrompt
 * @param {boolean} refused true when the last token was refused
 * @returns {Promise<string>}
 */

export class Api {
  /**
   * @param {string} sheet the sheet id (already validated)
   * @param {TokenPrompt} prompt
   * @param {URL | string} [base] where /v1 lives; the page's own directory by default
   */
  constructor(sheet, prompt, base = new URL('./', location.href)) {
    this.sheetURL = sheetURL(sheet, base);
    this.prompt = prompt;
    /** @type {Promise<string> | null} */
    this.asking = null;
    /** Called with true while the server waits for a token, false once one works. */
    this.onAuth = (/** @type {boolean} */ _waiting) => {};
    /** Called when the server holds this address back for some seconds after failed attempts. */
    this.onHold = (/** @type {number} */ _seconds) => {};
  }

  /** @returns {string} */
  get token() {
    return storedToken();
  }

  /** @param {string} t */
  set token(t) {
    try {
      sessionStorage.setItem(TOKEN_KEY, t);
    } catch {
      // Storage disabled: the token lives as long as this prompt's answer.
    }
  }

  /**
   * @param {string} refused the token the server refused ('' for none)
   * @returns {Promise<void>}
   */
  async needToken(refused) {
    if (this.token !== refused) return; // another request already got a new one
    if (!this.asking) {
      this.onAuth(true);
      this.asking = this.prompt(refused !== '').then((t) => {
        this.token = t;
        this.asking = null;
        return t;
      });
    }
    await this.asking;
  }

  /**
   * One request to the sheet's API. path is relative to the sheet
   * ('' is the status, 'log', 'cells').
   * @param {string} method
   * @param {string} path
   * @param {{query?: Record<string, string>, body?: unknown, signal?: AbortSignal, timeoutMs?: number}} [opts]
   * @returns {Promise<any>}
   */
  async request(method, path, opts = {}) {
    const url = requestURL(this.sheetURL, path, opts.query);
    for (;;) {
      const token = this.token;
      const headers = requestHeaders(token, opts.body !== undefined);
      const signals = [AbortSignal.timeout(opts.timeoutMs ?? REQUEST_TIMEOUT_MS)];
      if (opts.signal) signals.push(opts.signal);
      // The same request sent by early.js while the page loaded.
      const sent = method === 'GET' && opts.body === undefined ? takeEarly(url.href, token) : null;
      /** @type {Response} */
      let res;
      let text;
      try {
        if (sent) {
          ({ res, text } = await sent);
        } else {
          res = await fetch(url, {
            method, headers, cache: 'no-store', credentials: 'omit',
            body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
            signal: AbortSignal.any(signals),
          });
          text = await res.text();
        }
      } catch (e) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        throw new NetworkError(e instanceof Error ? e.message : String(e));
      }
      /** @type {any} */
      let body = null;
      try {
        body = text ? JSON.parse(text) : null;
      } catch {
        body = null;
      }
      if (res.ok) {
        if (token) this.onAuth(false);
        return body;
      }
      if (res.status === 401) {
        const hold = Number(res.headers.get('Retry-After'));
        if (hold > 0) {
          // Held back after too many failed attempts from this address:
          // the token was not even looked at, so wait and send it again.
          this.onHold(hold);
          await new Promise((r) => setTimeout(r, Math.min(hold, 60) * 1000));
          continue;
        }
        await this.needToken(token);
        continue;
      }
      const type = typeof body?.type === 'string' ? body.type : 'HTTP' + res.status;
      const message = typeof body?.message === 'string' ? body.message : res.statusText || 'HTTP ' + res.status;
      throw new ApiError(res.status, type, message, body ?? {});
    }
  }

  /** @returns {Promise<StatusReply>} */
  status() {
    return this.request('GET', '');
  }

  /**
   * @param {string} range
   * @param {AbortSignal} [signal]
   * @returns {Promise<CellsReply>}
   */
  cells(range, signal) {
    return this.request('GET', 'cells', { query: { range }, signal });
  }

  /**
   * One page of the log from start. With wait, the server may hold the
   * request until an entry arrives (the change feed).
   * @param {bigint} start
   * @param {{end?: bigint, wait?: number, signal?: AbortSignal}} [opts]
   * @returns {Promise<LogPage>}
   */
  log(start, opts = {}) {
    /** @type {Record<string, string>} */
    const query = { start: String(start) };
    if (opts.end !== undefined) query.end = String(opts.end);
    if (opts.wait !== undefined) query.wait = String(opts.wait);
    return this.request('GET', 'log', {
      query, signal: opts.signal, timeoutMs: 15000 + (opts.wait ?? 0) * 1000,
    });
  }

  /**
   * Appends entries at sequenceId (one entry, or a batch).
   * @param {bigint} sequenceId
   * @param {object[]} entries
   * @returns {Promise<AppendReply>}
   */
  append(sequenceId, entries) {
    const body = entries.length === 1
      ? { sequenceId: String(sequenceId), entry: entries[0] }
      : { sequenceId: String(sequenceId), entries };
    return this.request('POST', 'log', { body });
  }
}
