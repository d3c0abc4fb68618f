// The page's model of one sheet: the cells it has seen (a bounded cache of
// tiles filled through /cells), the change feed that keeps them current,
// and the outbox of the user's edits. It knows nothing of the DOM; the
// grid asks it what to show and tells it what is visible.
//
// Consistency. Every cell the page holds carries a version: a tile loaded
// at endSequenceId E reflects every entry below E, and an entry with id s
// changes a cell only if s >= E and s is newer than the entry that last
// changed it. So entries may be applied more than once and in any order
// (the feed, our own confirmed appends, a catch-up read) without a cell
// ever going back to an older value. Entries the feed has applied are
// kept in a ring, so that a tile whose reply is older than the feed is
// brought forward on arrival instead of showing stale values.
//
// Edits are shown at once (an overlay over the cache) and appended in
// order, in batches, by one sender. A conflict (409) is retried after
// reading the log up to the id the server named. When an append gets no
// reply its outcome is unknown: the sender reads the log at the id it
// tried. The entries are there and are ours: done. Someone else's: ours
// can never land there, so it appends again at the new end. Nothing there
// yet: it appends again at the same id, where at most one of the two
// requests can land. So an edit lands once, never twice, whatever the
// network does.

import { ref } from './a1.js';
import { MAX_RANGE_CELLS, TILE_COLS, TILE_ROWS } from './dims.js';
import { ApiError, NetworkError } from './api.js';
import { displayText } from './format.js';
import { cellOf, sameCell } from './values.js';

/** @typedef {import('./values.js').Cell} Cell */
/** @typedef {import('./api.js').Api} Api */
/** @typedef {import('./api.js').LogPage} LogPage */
/** @typedef {import('./api.js').LogEntry} LogEntry */
/** @typedef {import('./api.js').StatusReply} StatusReply */

export { MAX_RANGE_CELLS, TILE_COLS, TILE_ROWS };
/** Tiles kept (LRU beyond those on screen): at most 256 × 1,024 cells. */
export const MAX_TILES = 256;
/** Entries the feed remembers for bringing late tile replies forward. */
const RING_SIZE = 20000;
/** Batch appends: at most 99 entries and well under the 64 KiB body limit. */
const MAX_BATCH = 99;
const MAX_BATCH_BYTES = 48 * 1024;
/** Change feed: seconds the server may hold a request. */
export const FEED_WAIT = 20;
/** Polling period when the server has no change feed. */
export const POLL_MS = 1000;
/** Behind the log by more than this, reload the visible cells rather than replay. */
const RESYNC_GAP = 50000n;

/**
 * @typedef {'connecting' | 'live' | 'polling' | 'offline' | 'unauthorized' | 'forbidden' | 'gone'} Connection
 * What a grid cell shows: its text and a kind for styling.
 * @typedef {{cell: Cell, text?: string, kind?: string}} Shown
 * A cell held by a tile, with the id of the entry that last changed it
 * (none when it came from a /cells reply).
 * @typedef {Shown & {seq?: bigint}} Held
 * @typedef {{id: number, row: number, col: number, cell: Cell, entry: object,
 *   seq?: bigint, text?: string, kind?: string}} Edit
 * @typedef {{row0: number, col0: number, row1: number, col1: number}} Rect
 */

/**
 * @param {Shown} s
 * @returns {Shown}
 */
function shown(s) {
  if (s.text === undefined) {
    const v = s.cell.value;
    s.text = displayText(v, s.cell.format);
    s.kind = v === undefined || v === null ? '' : typeof v === 'number' ? 'n'
      : typeof v === 'boolean' ? 'b' : typeof v === 'string' ? 's' : 'e';
  }
  return s;
}

/** Shown for a cell whose tile has not arrived. */
export const LOADING = Object.freeze({ cell: Object.freeze({}), text: '', kind: 'loading' });
const EMPTY = Object.freeze({ cell: Object.freeze({}), text: '', kind: '' });

class Tile {
  /**
   * @param {number} tr
   * @param {number} tc
   */
  constructor(tr, tc) {
    this.row0 = tr * TILE_ROWS;
    this.col0 = tc * TILE_COLS;
    /** @type {Map<number, Held>} by (row - row0) * TILE_COLS + (col - col0) */
    this.cells = new Map();
    /**
     * The parts the tile was loaded in (one, unless a reply was too large)
     * and the endSequenceId each reflects.
     * @type {(Rect & {at: bigint})[]}
     */
    this.parts = [];
  }

  /**
   * @param {number} row
   * @param {number} col
   * @returns {bigint}
   */
  at(row, col) {
    for (const p of this.parts) {
      if (row >= p.row0 && row <= p.row1 && col >= p.col0 && col <= p.col1) return p.at;
    }
    return -1n;
  }
}

/**
 * @param {number} row
 * @param {number} col
 */
function tileKey(row, col) {
  return Math.floor(row / TILE_ROWS) * 2 ** 27 + Math.floor(col / TILE_COLS);
}

/**
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
function sleep(ms, signal) {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

/**
 * The wire entry that gives a cell its state.
 * @param {number} row
 * @param {number} col
 * @param {Cell} cell
 */
function entryOf(row, col, cell) {
  /** @type {Record<string, unknown>} */
  const e = { type: 'SetCellValueAndFormat', row, column: col };
  if ('value' in cell) e.value = cell.value;
  if (cell.format !== undefined) e.format = cell.format;
  return e;
}

/**
 * @param {LogEntry} e
 * @param {Edit} ed
 */
function isOurs(e, ed) {
  return e.type === 'SetCellValueAndFormat' && e.row === ed.row && e.column === ed.col && sameCell(cellOf(e), ed.cell);
}

export class Sheet {
  /** @param {Api} api */
  constructor(api) {
    this.api = api;
    /** @type {Map<number, Tile>} in least-recently-used order */
    this.tiles = new Map();
    /** @type {Map<string, {ctrl: AbortController, keys: number[]}>} */
    this.loading = new Map();
    /** @type {Set<number>} tiles of the current viewport */
    this.wanted = new Set();
    /** @type {Rect} */
    this.viewport = { row0: 0, col0: 0, row1: 0, col1: 0 };

    /** @type {{seq: bigint, row: number, col: number, cell: Cell}[]} entries [ringStart, feedAt) */
    this.ring = [];
    this.ringStart = 0n;
    /** The next id the feed reads; -1 until the first /cells reply says where the sheet is. */
    this.feedAt = -1n;
    /** The newest end sequence id seen anywhere. */
    this.end = -1n;
    /** @type {'wait' | 'poll'} */
    this.feedMode = 'wait';
    /** Aborted by stop(): ends the feed's request. */
    this.stopCtrl = new AbortController();
    /** Aborted to end a polling feed's pause early. */
    this.pollWake = new AbortController();

    /** @type {Edit[]} not yet appended, in order */
    this.outbox = [];
    /** @type {Edit[]} appended, until the feed has passed them */
    this.confirmed = [];
    /** @type {Map<string, Edit>} the newest edit of each cell not yet seen by the feed */
    this.overlay = new Map();
    this.nextEditId = 1;
    this.sending = false;
    this.maxBatch = MAX_BATCH;
    /** 1 once the server refused a batch (it may not take batches). */
    this.batchLimit = MAX_BATCH;

    /** @type {Connection} */
    this.connection = 'connecting';
    /** @type {StatusReply | null} */
    this.status = null;
    /** A message for the user about the last thing that went wrong, or ''. */
    this.notice = '';
    this.stopped = false;

    /** The cells changed: redraw. */
    this.onCells = () => {};
    /** The status line changed. */
    this.onStatus = () => {};

    /** @type {() => void} */
    this.started = () => {};
    /** @type {Promise<void>} resolved once feedAt is known */
    this.ready = new Promise((r) => { this.started = r; });
    this.statusTimer = 0;
    this.statusAt = 0;
  }

  /**
   * Starts the feed and the status refresh once after has resolved; the
   * grid's first viewport starts the loads.
   * @param {Promise<unknown>} [after]
   */
  start(after = Promise.resolve()) {
    this.api.onAuth = (waiting) => {
      if (waiting) this.setConnection('unauthorized');
      else {
        if (this.notice.startsWith('too many failed')) this.notice = '';
        if (this.connection === 'unauthorized') this.setConnection('connecting');
        this.onStatus();
      }
    };
    this.api.onHold = (secs) => {
      this.notice = 'too many failed token attempts from this address: the server is holding it back; retrying in ' + secs + ' s';
      this.onStatus();
    };
    void after.then(() => {
      if (this.stopped) return;
      void this.feed();
      void this.refreshStatus();
    });
  }

  stop() {
    this.stopped = true;
    this.stopCtrl.abort();
    this.pollWake.abort();
    for (const l of this.loading.values()) l.ctrl.abort();
  }

  /** @param {Connection} c */
  setConnection(c) {
    if (this.connection === c) return;
    if (this.connection === 'forbidden' && c === 'offline') return;
    this.connection = c;
    this.onStatus();
  }

  /** @param {bigint} id */
  seen(id) {
    if (id > this.end) {
      this.end = id;
      this.onStatus();
    }
  }

  /** Edits not yet acknowledged by the server. */
  get unsent() {
    return this.outbox.length;
  }

  // ---- reading cells ----

  /**
   * What the grid shows at (row, col).
   * @param {number} row
   * @param {number} col
   * @returns {Shown & {pending?: boolean}}
   */
  shown(row, col) {
    if (this.overlay.size) {
      const ed = this.overlay.get(row + ',' + col);
      if (ed) return shown(ed);
    }
    const t = this.tiles.get(tileKey(row, col));
    if (!t) return LOADING;
    const h = t.cells.get((row - t.row0) * TILE_COLS + (col - t.col0));
    return h ? shown(h) : EMPTY;
  }

  /**
   * The cell at (row, col) as the page knows it, or null while loading.
   * @param {number} row
   * @param {number} col
   * @returns {Cell | null}
   */
  cell(row, col) {
    const s = this.shown(row, col);
    return s === LOADING ? null : s.cell;
  }

  /**
   * @param {number} row
   * @param {number} col
   */
  isPending(row, col) {
    if (!this.overlay.size) return false;
    const ed = this.overlay.get(row + ',' + col);
    return ed !== undefined && ed.seq === undefined;
  }

  /**
   * The grid shows this rectangle: load what is missing, cancel loads no
   * longer needed.
   * @param {Rect} r
   */
  setViewport(r) {
    this.viewport = r;
    const tr0 = Math.floor(r.row0 / TILE_ROWS), tr1 = Math.floor(r.row1 / TILE_ROWS);
    const tc0 = Math.floor(r.col0 / TILE_COLS), tc1 = Math.floor(r.col1 / TILE_COLS);
    const wanted = new Set();
    /** @type {number[]} */
    let run = [];
    const flush = () => {
      if (run.length) this.load(run);
      run = [];
    };
    for (let tr = tr0; tr <= tr1; tr++) {
      for (let tc = tc0; tc <= tc1; tc++) {
        const key = tr * 2 ** 27 + tc;
        wanted.add(key);
        const t = this.tiles.get(key);
        if (t) {
          this.tiles.delete(key); // most recently used
          this.tiles.set(key, t);
          flush();
        } else if (this.isLoading(key)) {
          flush();
        } else {
          run.push(key);
          if ((run.length + 1) * TILE_ROWS * TILE_COLS > MAX_RANGE_CELLS) flush();
        }
      }
      flush();
    }
    this.wanted = wanted;
    for (const [id, l] of this.loading) {
      if (!l.keys.some((k) => wanted.has(k))) {
        l.ctrl.abort();
        this.loading.delete(id);
      }
    }
  }

  /** @param {number} key */
  isLoading(key) {
    for (const l of this.loading.values()) if (l.keys.includes(key)) return true;
    return false;
  }

  /**
   * Loads a run of tiles of one tile row with one /cells request (split
   * when the server finds the reply too large).
   * @param {number[]} keys
   */
  async load(keys) {
    const tr = Math.floor(keys[0] / 2 ** 27);
    const tc0 = keys[0] % 2 ** 27, tc1 = keys[keys.length - 1] % 2 ** 27;
    const rect = {
      row0: tr * TILE_ROWS, row1: tr * TILE_ROWS + TILE_ROWS - 1,
      col0: tc0 * TILE_COLS, col1: tc1 * TILE_COLS + TILE_COLS - 1,
    };
    const id = keys.join(',');
    const ctrl = new AbortController();
    this.loading.set(id, { ctrl, keys });
    try {
      const parts = await this.fetchRect(rect, ctrl.signal);
      const fresh = this.tilesOf(keys, parts);
      await this.bringForward(fresh, parts, ctrl.signal);
      if (ctrl.signal.aborted) return;
      this.loading.delete(id);
      this.store(fresh);
    } catch (e) {
      if (ctrl.signal.aborted) return;
      this.loading.delete(id);
      this.failed(e);
      // The viewport asks again when it moves; if it does not, retry.
      await sleep(this.connection === 'offline' ? 1000 : 3000);
      if (!this.stopped) this.setViewport(this.viewport);
    }
  }

  /**
   * /cells of a rectangle; a 413 (reply over 8 MiB) splits it in halves.
   * @param {Rect} r
   * @param {AbortSignal} signal
   * @returns {Promise<{rect: Rect, at: bigint, cells: Record<string, {value?: unknown, format?: unknown}>}[]>}
   */
  async fetchRect(r, signal) {
    const range = ref(r.row0, r.col0) + ':' + ref(r.row1, r.col1);
    try {
      const reply = await this.api.cells(range, signal);
      const at = BigInt(reply.endSequenceId);
      this.seen(at);
      this.reconnected();
      return [{ rect: r, at, cells: reply.cells }];
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 413) || (r.row0 === r.row1 && r.col0 === r.col1)) throw e;
      /** @type {Rect[]} */
      let halves;
      if (r.row0 < r.row1) {
        const mid = Math.floor((r.row0 + r.row1) / 2);
        halves = [{ ...r, row1: mid }, { ...r, row0: mid + 1 }];
      } else {
        const mid = Math.floor((r.col0 + r.col1) / 2);
        halves = [{ ...r, col1: mid }, { ...r, col0: mid + 1 }];
      }
      const [a, b] = await Promise.all(halves.map((h) => this.fetchRect(h, signal)));
      return [...a, ...b];
    }
  }

  /**
   * The tiles of a /cells reply (one or more parts, each at its own
   * endSequenceId). The first reply tells where the sheet is: the feed
   * starts there.
   * @param {number[]} keys
   * @param {{rect: Rect, at: bigint, cells: Record<string, {value?: unknown, format?: unknown}>}[]} parts
   * @returns {Map<number, Tile>}
   */
  tilesOf(keys, parts) {
    if (this.feedAt < 0n) {
      let at = parts[0].at;
      for (const p of parts) if (p.at < at) at = p.at;
      this.feedAt = this.ringStart = at;
      this.started();
    }
    /** @type {Map<number, Tile>} */
    const fresh = new Map();
    for (const k of keys) {
      const t = new Tile(Math.floor(k / 2 ** 27), k % 2 ** 27);
      for (const p of parts) t.parts.push({ ...p.rect, at: p.at });
      fresh.set(k, t);
    }
    for (const p of parts) {
      for (const [a1, c] of Object.entries(p.cells)) {
        const m = /^([A-Z]+)([0-9]+)$/.exec(a1);
        if (!m) continue;
        let col = 0;
        for (const ch of m[1]) col = col * 26 + ch.charCodeAt(0) - 64;
        col -= 1;
        const row = Number(m[2]) - 1;
        const t = fresh.get(tileKey(row, col));
        if (t) t.cells.set((row - t.row0) * TILE_COLS + (col - t.col0), { cell: cellOf(c) });
      }
    }
    return fresh;
  }

  /**
   * A reply older than what the feed still remembers (a server whose
   * engine lags its log, a ring that moved on) reads the missing entries
   * from the log itself.
   * @param {Map<number, Tile>} fresh
   * @param {{at: bigint}[]} parts
   * @param {AbortSignal} signal
   */
  async bringForward(fresh, parts, signal) {
    let at = this.ringStart;
    for (const p of parts) if (p.at < at) at = p.at;
    const end = this.ringStart;
    while (at < end && !signal.aborted) {
      const page = await this.api.log(at, { end, signal });
      const start = BigInt(page.startSequenceId);
      page.entries.forEach((e, i) => {
        if (e.type !== 'SetCellValueAndFormat') return;
        const t = fresh.get(tileKey(e.row, e.column));
        if (t) this.applyTo(t, start + BigInt(i), e.row, e.column, cellOf(e));
      });
      const next = BigInt(page.endSequenceId);
      if (page.isComplete || next <= at) break;
      at = next;
    }
  }

  /**
   * Puts fresh tiles into the cache, brought forward to the feed, and
   * evicts the least recently used beyond the bound.
   * @param {Map<number, Tile>} fresh
   */
  store(fresh) {
    for (const [k, t] of fresh) {
      this.tiles.delete(k);
      this.tiles.set(k, t);
    }
    // The ring holds ids ringStart, ringStart+1, ...: replay only those
    // at or after the oldest part (usually none: a reply is current).
    let oldest = this.feedAt;
    for (const t of fresh.values()) for (const p of t.parts) if (p.at < oldest) oldest = p.at;
    for (let i = oldest > this.ringStart ? Number(oldest - this.ringStart) : 0; i < this.ring.length; i++) {
      const e = this.ring[i];
      const t = fresh.get(tileKey(e.row, e.col));
      if (t) this.applyTo(t, e.seq, e.row, e.col, e.cell);
    }
    for (const ed of this.confirmed) {
      const t = fresh.get(tileKey(ed.row, ed.col));
      if (t && ed.seq !== undefined) this.applyTo(t, ed.seq, ed.row, ed.col, ed.cell);
    }
    this.evict();
    this.onCells();
  }

  evict() {
    for (const k of this.tiles.keys()) {
      if (this.tiles.size <= MAX_TILES) break;
      if (!this.wanted.has(k)) this.tiles.delete(k);
    }
  }

  /**
   * Applies one entry to the cached tiles.
   * @param {bigint} seq
   * @param {number} row
   * @param {number} col
   * @param {Cell} cell
   * @returns {boolean} whether a held cell changed
   */
  apply(seq, row, col, cell) {
    const t = this.tiles.get(tileKey(row, col));
    return t !== undefined && this.applyTo(t, seq, row, col, cell);
  }

  /**
   * @param {Tile} t
   * @param {bigint} seq
   * @param {number} row
   * @param {number} col
   * @param {Cell} cell
   */
  applyTo(t, seq, row, col, cell) {
    if (seq < t.at(row, col)) return false;
    const i = (row - t.row0) * TILE_COLS + (col - t.col0);
    const h = t.cells.get(i);
    if (h?.seq !== undefined && seq <= h.seq) return false;
    t.cells.set(i, { cell, seq });
    return true;
  }

  /**
   * Applies a page of the log read from feedAt (or from before it: what
   * the feed already has is skipped).
   * @param {LogPage} page
   */
  applyPage(page) {
    const start = BigInt(page.startSequenceId);
    const end = BigInt(page.endSequenceId);
    if (start > this.feedAt) return; // not contiguous with what we have; the feed reads it again
    let changed = false;
    page.entries.forEach((e, i) => {
      const seq = start + BigInt(i);
      if (seq < this.feedAt || e.type !== 'SetCellValueAndFormat') return;
      const cell = cellOf(e);
      changed = this.apply(seq, e.row, e.column, cell) || changed;
      this.ring.push({ seq, row: e.row, col: e.column, cell });
    });
    if (end > this.feedAt) this.feedAt = end;
    if (this.ring.length > RING_SIZE) {
      this.ring.splice(0, this.ring.length - RING_SIZE);
    }
    this.ringStart = this.ring.length ? this.ring[0].seq : this.feedAt;
    this.seen(this.feedAt);
    // Our confirmed edits the feed has now passed show as the log does.
    if (this.confirmed.length) {
      const keep = [];
      for (const ed of this.confirmed) {
        if (ed.seq !== undefined && ed.seq < this.feedAt) {
          this.dropOverlay(ed);
          changed = true;
        } else keep.push(ed);
      }
      this.confirmed = keep;
    }
    if (changed) this.onCells();
    if (page.entries.length) this.statusSoon();
  }

  /** Forgets every tile and reads the visible cells again (the log moved under us). */
  resync() {
    for (const l of this.loading.values()) l.ctrl.abort();
    this.loading.clear();
    this.tiles.clear();
    this.ring = [];
    this.feedAt = -1n;
    this.ready = new Promise((r) => { this.started = r; });
    this.onCells();
    this.setViewport(this.viewport);
  }

  // ---- the change feed ----

  async feed() {
    let backoff = 250;
    /** Failed held requests in a row: a front end that cuts them off (a gateway's timeout) gets polled instead. */
    let cutOff = 0;
    while (!this.stopped) {
      await this.ready;
      if (this.end - this.feedAt > RESYNC_GAP) {
        this.resync();
        continue;
      }
      const from = this.feedAt;
      const t0 = performance.now();
      const signal = this.stopCtrl.signal;
      // A held request says nothing until something is appended, so the
      // feed is first read without wait: the page is live as soon as the
      // server answers, not up to FEED_WAIT seconds later.
      const held = this.feedMode === 'wait' && this.connection === 'live';
      try {
        const page = held
          ? await this.api.log(from, { wait: FEED_WAIT, signal })
          : await this.api.log(from, { signal });
        backoff = 250;
        cutOff = 0;
        if (this.feedAt < 0n) continue; // resynced meanwhile
        this.applyPage(page);
        this.setConnection(this.feedMode === 'wait' ? 'live' : 'polling');
        if (!page.isComplete) continue;
        // A server that ignores wait answers at once: never spin on it.
        const quick = held && page.entries.length === 0 && performance.now() - t0 < 1000;
        if (this.feedMode === 'poll' || quick) {
          if (this.pollWake.signal.aborted) this.pollWake = new AbortController();
          await sleep(POLL_MS, this.pollWake.signal);
        }
      } catch (e) {
        if (this.stopped) return;
        if (e instanceof ApiError) {
          if (e.status === 400 && held) {
            // No change feed on this server (yet): poll.
            this.feedMode = 'poll';
            this.setConnection('polling');
            continue;
          }
          if (e.status === 416) {
            this.resync();
            continue;
          }
          if (e.status === 403) {
            this.forbidden(e);
            await sleep(10000);
            continue;
          }
          if (e.status >= 500 && held && performance.now() - t0 > 5000 && ++cutOff >= 3) {
            this.feedMode = 'poll';
            this.setConnection('polling');
            continue;
          }
        } else if (e instanceof NetworkError) {
          this.setConnection('offline');
          // The server that comes back may be a newer one, with the feed.
          this.feedMode = 'wait';
        }
        await sleep(backoff * (0.75 + Math.random() / 2));
        backoff = Math.min(backoff * 2, 4000);
      }
    }
  }

  /** A request went through after the server was away. */
  reconnected() {
    if (this.connection === 'offline') {
      this.setConnection(this.feedMode === 'wait' ? 'live' : 'polling');
    }
  }

  /**
   * Reads the log until the feed has reached id (catching up after a
   * conflict), applying what it finds.
   * @param {bigint} id
   */
  async catchUp(id) {
    await this.ready;
    while (this.feedAt < id && !this.stopped) {
      const page = await this.api.log(this.feedAt, { end: id });
      this.applyPage(page);
      if (BigInt(page.endSequenceId) <= BigInt(page.startSequenceId) && page.isComplete) break;
    }
  }

  statusSoon() {
    if (this.statusTimer) return;
    const wait = Math.max(0, 1000 - (performance.now() - this.statusAt));
    this.statusTimer = window.setTimeout(() => {
      this.statusTimer = 0;
      void this.refreshStatus();
    }, wait);
  }

  async refreshStatus() {
    if (this.stopped) return;
    this.statusAt = performance.now();
    try {
      this.status = await this.api.status();
      this.seen(BigInt(this.status.endSequenceId));
      this.onStatus();
    } catch (e) {
      this.failed(e);
    } finally {
      // Workflows finish without new entries: look again while any is pending.
      if (!this.statusTimer && !this.stopped) {
        const busy = (this.status?.pending.length ?? 0) > 0;
        this.statusTimer = window.setTimeout(() => {
          this.statusTimer = 0;
          void this.refreshStatus();
        }, busy ? 2000 : 10000);
      }
    }
  }

  /** @param {unknown} e */
  failed(e) {
    if (e instanceof NetworkError) this.setConnection('offline');
    else if (e instanceof ApiError && e.status === 403) this.forbidden(e);
    else if (e instanceof ApiError) {
      this.notice = e.type + ': ' + e.message;
      this.onStatus();
    }
  }

  /** @param {ApiError} e */
  forbidden(e) {
    this.notice = e.message;
    this.setConnection('forbidden');
  }

  // ---- editing ----

  /**
   * Sets a cell (an empty cell clears it) and appends the change.
   * @param {number} row
   * @param {number} col
   * @param {Cell} cell
   */
  edit(row, col, cell) {
    /** @type {Edit} */
    const ed = { id: this.nextEditId++, row, col, cell, entry: entryOf(row, col, cell) };
    this.outbox.push(ed);
    this.overlay.set(row + ',' + col, ed);
    this.onCells();
    this.onStatus();
    void this.send();
  }

  /**
   * The overlay of ed's cell falls back to an older edit of the same cell
   * still waiting, or to the cache.
   * @param {Edit} ed
   */
  dropOverlay(ed) {
    const key = ed.row + ',' + ed.col;
    if (this.overlay.get(key) !== ed) return;
    this.overlay.delete(key);
    for (const list of [this.confirmed, this.outbox]) {
      for (const o of list) if (o !== ed && o.row === ed.row && o.col === ed.col) this.overlay.set(key, o);
    }
  }

  /** The one sender: appends the outbox in order, batch by batch. */
  async send() {
    if (this.sending) return;
    this.sending = true;
    try {
      while (this.outbox.length && !this.stopped) {
        await this.ready;
        const batch = this.nextBatch();
        await this.appendBatch(batch);
      }
    } finally {
      this.sending = false;
      this.onStatus();
    }
  }

  /** @returns {Edit[]} */
  nextBatch() {
    const batch = [];
    let bytes = 64;
    for (const ed of this.outbox) {
      const n = JSON.stringify(ed.entry).length + 1;
      if (batch.length && (batch.length >= this.maxBatch || bytes + n > MAX_BATCH_BYTES)) break;
      batch.push(ed);
      bytes += n;
    }
    return batch;
  }

  /** The id the next append goes to, as far as the page knows. */
  nextId() {
    return this.feedAt > this.end ? this.feedAt : this.end;
  }

  /**
   * Appends one batch until it has landed exactly once or was refused.
   * @param {Edit[]} batch
   */
  async appendBatch(batch) {
    /** An id where an attempt of this batch may have landed: no verdict yet. */
    let maybeAt = -1n;
    let seq = this.nextId();
    let backoff = 250;
    const pause = async () => {
      await sleep(backoff * (0.75 + Math.random() / 2));
      backoff = Math.min(backoff * 2, 4000);
    };
    while (!this.stopped) {
      /** @type {unknown} */
      let err;
      try {
        const reply = await this.api.append(seq, batch.map((e) => e.entry));
        this.confirm(batch, BigInt(reply.sequenceId));
        this.reconnected();
        return;
      } catch (e) {
        err = e;
      }
      if (err instanceof ApiError && err.status === 409) {
        const named = err.body.nextSequenceId;
        const next = typeof named === 'string' && /^[0-9]+$/.test(named) ? BigInt(named) : seq + 1n;
        this.seen(next);
        if (maybeAt >= 0n) {
          // The id we tried is taken, perhaps by our own lost append.
          const verdict = await this.landed(batch, maybeAt);
          if (verdict === 'ours') return;
          if (verdict === 'absent') {
            await pause();
            continue;
          }
          maybeAt = -1n;
        }
        try {
          await this.catchUp(next);
        } catch (e) {
          this.failed(e);
          await pause();
        }
        seq = this.nextId() > next ? this.nextId() : next;
        continue;
      }
      if (err instanceof ApiError && maybeAt < 0n && [400, 403, 404, 413].includes(err.status)) {
        // A verdict: nothing was written.
        if (err.status === 413 && batch.length > 1) {
          this.maxBatch = Math.max(1, Math.floor(batch.length / 2));
          return;
        }
        if (err.status === 400 && batch.length > 1) {
          // A server without batch appends, or one bad entry in the
          // batch: from now on one entry per append, so only a bad one is
          // refused.
          this.batchLimit = this.maxBatch = 1;
          return;
        }
        this.refuse(batch, err);
        return;
      }
      // No verdict (no reply, 5xx, 429): the append may have landed.
      this.failed(err);
      maybeAt = seq;
      await pause();
      const verdict = await this.landed(batch, seq);
      if (verdict === 'ours') return;
      if (verdict === 'theirs') {
        maybeAt = -1n;
        seq = this.nextId();
      }
      // 'absent': again at the same id, where at most one attempt can land.
    }
  }

  /**
   * Reads the log at seq to learn whether batch landed there. Retries
   * until the server answers.
   * @param {Edit[]} batch
   * @param {bigint} seq
   * @returns {Promise<'ours' | 'theirs' | 'absent'>}
   */
  async landed(batch, seq) {
    let backoff = 250;
    for (;;) {
      if (this.stopped) return 'absent';
      try {
        /** @type {LogEntry[]} */
        const got = [];
        let at = seq;
        const end = seq + BigInt(batch.length);
        while (at < end) {
          const page = await this.api.log(at, { end });
          got.push(...page.entries);
          const next = BigInt(page.endSequenceId);
          if (page.isComplete || next <= at) break;
          at = next;
        }
        if (got.length === 0) return 'absent';
        if (got.length === batch.length && batch.every((ed, i) => isOurs(got[i], ed))) {
          this.confirm(batch, seq);
          return 'ours';
        }
        return 'theirs';
      } catch (e) {
        if (e instanceof ApiError && e.status === 416) return 'absent'; // the log is shorter than seq
        this.failed(e);
        await sleep(backoff * (0.75 + Math.random() / 2));
        backoff = Math.min(backoff * 2, 4000);
      }
    }
  }

  /**
   * @param {Edit[]} batch
   * @param {bigint} seq where the first landed
   */
  confirm(batch, seq) {
    batch.forEach((ed, i) => {
      ed.seq = seq + BigInt(i);
      this.apply(ed.seq, ed.row, ed.col, ed.cell);
      if (ed.seq < this.feedAt) this.dropOverlay(ed);
      else this.confirmed.push(ed);
    });
    this.outbox.splice(0, batch.length);
    this.seen(seq + BigInt(batch.length));
    this.maxBatch = this.batchLimit;
    this.onCells();
    this.onStatus();
    this.pollWake.abort(); // a polling feed reads at once
  }

  /**
   * The server refused the batch: drop it and show the cells as they are.
   * @param {Edit[]} batch
   * @param {ApiError} e
   */
  refuse(batch, e) {
    this.outbox.splice(0, batch.length);
    for (const ed of batch) this.dropOverlay(ed);
    if (e.status === 403) this.forbidden(e);
    else this.notice = 'edit of ' + batch.map((ed) => ref(ed.row, ed.col)).join(', ') + ' refused: ' + e.message;
    this.onCells();
    this.onStatus();
  }
}
