// The grid: a window of cell elements over 2^31 rows and columns.
//
// Browsers cap an element's size near 33 million pixels (Firefox near 18
// million), so the scrolled extent is capped at MAX_SCROLL_PX and the
// scrollbar is scaled onto the whole sheet: a thumb position maps to a
// row in proportion, so the thumb at the bottom shows the last row. Wheel,
// arrow and page keys do not go through that mapping (one pixel of
// scrollbar is hundreds of rows): they move the window by whole rows and
// columns, and the scrollbar follows.
//
// Only the visible cells exist in the DOM: one element per visible row
// and column, reused as the window moves. Rows that stay visible keep
// their elements (moved to the other end of the list when scrolling), so
// scrolling by a few rows rewrites only the rows that came into view.
//
// Accessibility: the ARIA grid pattern. The scroller is the grid (one tab
// stop) and keeps the focus; aria-activedescendant names the active cell,
// every row and cell carries its absolute aria-rowindex/aria-colindex, and
// aria-rowcount/aria-colcount give the whole sheet.

import { columnName, ref, SIZE } from './a1.js';
import { COL_W, firstWindow, HEAD_H, HEAD_W, ROW_H } from './dims.js';

export { COL_W, HEAD_H, HEAD_W, ROW_H };
/** The scrolled extent's cap, below every browser's element size limit. */
export const MAX_SCROLL_PX = 8_000_000;
/**
 * The longest the first draw waits for the first cells: until then the
 * cells are not even laid out. A page that drew its empty cells first
 * would lay them out twice, and the first reply (a few milliseconds on a
 * near server) would wait in the main thread's queue behind that frame.
 * A slow server still gets its empty grid this soon.
 */
export const FIRST_DRAW_HOLD_MS = 400;
const EXTENT_W = HEAD_W + Math.min(SIZE * COL_W, MAX_SCROLL_PX);
const EXTENT_H = HEAD_H + Math.min(SIZE * ROW_H, MAX_SCROLL_PX);

/**
 * @typedef {{text?: string, kind?: string}} Shown
 * @typedef {object} Source what the grid shows, and what it tells
 * @property {(row: number, col: number) => Shown} shown
 * @property {(row: number, col: number) => boolean} isPending
 * @property {(r: {row0: number, col0: number, row1: number, col1: number}) => void} setViewport
 * @property {() => {rows: number, cols: number}} extent the used part of the sheet
 * @property {(row: number, col: number) => string} editText the editor's text of a cell
 * @property {(row: number, col: number, text: string) => void} commit the user typed text into a cell
 * @property {(row: number, col: number) => void} clear the user cleared a cell
 * @property {(row: number, col: number) => void} activeChanged
 * @property {() => void} gotoRequested Ctrl+G or F6
 */

/**
 * @typedef {{el: HTMLElement, ref: string, col: number, text: string | undefined, cls: string}} CellSlot
 * @typedef {{el: HTMLElement, head: HTMLElement, cells: CellSlot[], row: number}} RowSlot
 */

/**
 * @param {number} v
 * @param {number} lo
 * @param {number} hi
 */
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/**
 * @param {string} tag
 * @param {string} cls
 * @param {Record<string, string>} [attrs]
 * @returns {HTMLElement}
 */
function el(tag, cls, attrs = {}) {
  const e = document.createElement(tag);
  e.className = cls;
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

export class Grid {
  /**
   * @param {HTMLElement} wrap an empty, positioned container
   * @param {Source} source
   * @param {string} label the grid's accessible name
   */
  constructor(wrap, source, label) {
    this.source = source;
    this.wrap = wrap;
    this.scroller = el('div', 'grid', {
      role: 'grid', tabindex: '0', 'aria-label': label,
      'aria-rowcount': String(SIZE + 1), 'aria-colcount': String(SIZE + 1),
      'aria-multiselectable': 'false', 'aria-readonly': 'false', 'aria-busy': 'true',
    });
    this.extentEl = el('div', 'extent', { role: 'presentation' });
    this.layer = el('div', 'layer', { role: 'presentation' });
    this.headRow = el('div', 'head', { role: 'row', 'aria-rowindex': '1' });
    this.corner = el('div', 'corner', { role: 'columnheader', 'aria-colindex': '1', 'aria-label': 'Row' });
    this.headRow.append(this.corner);
    this.body = el('div', 'body', { role: 'rowgroup' });
    // The body joins the layer at the first draw (see FIRST_DRAW_HOLD_MS).
    this.layer.append(this.headRow);
    this.extentEl.append(this.layer);
    this.scroller.append(this.extentEl);
    /** @type {HTMLInputElement} */
    this.editor = /** @type {HTMLInputElement} */ (el('input', 'editor', {
      'data-role': 'editor', type: 'text', autocomplete: 'off', spellcheck: 'false', dir: 'auto',
    }));
    this.editor.hidden = true;
    wrap.append(this.scroller, this.editor);

    /** First row and column of the window. */
    this.top = 0;
    this.left = 0;
    /** The active (selected) cell. */
    this.row = 0;
    this.col = 0;
    /** What the DOM shows; -1 before the first render. */
    this.shownTop = -1;
    this.shownLeft = -1;
    /** @type {RowSlot[]} in visual order */
    this.rows = [];
    /** @type {{el: HTMLElement, col: number}[]} */
    this.heads = [];
    this.nRows = 0;
    this.nCols = 0;
    this.fullRows = 1;
    this.fullCols = 1;
    this.clientW = 0;
    this.clientH = 0;
    this.expTop = 0;
    this.expLeft = 0;
    this.maxST = 0;
    this.maxSL = 0;
    this.wheelY = 0;
    this.wheelX = 0;
    this.frame = 0;
    this.viewportKey = '';
    this.drawn = false;
    /** @type {() => void} resolves firstDraw */
    this.onDrawn = () => {};
    /** @type {Promise<void>} resolves once the frame that shows the first complete viewport is out */
    this.firstDraw = new Promise((resolve) => { this.onDrawn = resolve; });
    this.holdUntil = performance.now() + FIRST_DRAW_HOLD_MS;
    this.holdTimer = 0;
    /** @type {null | {row: number, col: number, original: string, typed: boolean}} */
    this.editing = null;

    this.scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
    this.scroller.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    this.scroller.addEventListener('keydown', (e) => this.onKey(e));
    this.scroller.addEventListener('mousedown', (e) => this.onMouse(e));
    this.scroller.addEventListener('dblclick', (e) => {
      if (this.cellAt(e)) this.openEditor(this.source.editText(this.row, this.col), false);
    });
    this.editor.addEventListener('keydown', (e) => this.onEditorKey(e));
    this.editor.addEventListener('input', () => this.fitEditor());
    this.editor.addEventListener('blur', () => {
      if (this.editing) this.commitEdit(0, 0, false);
    });
    // The first cells are asked for before anything reads layout (the
    // first layout of a page loads its fonts): the window is at the top
    // left and cannot be larger than the browser's viewport.
    // early.js asked for this same window's tiles as the page loaded.
    source.setViewport(firstWindow(window.innerWidth, window.innerHeight));
    new ResizeObserver(() => this.resize()).observe(this.scroller);
    this.resize();
  }

  // ---- geometry ----

  resize() {
    // The extent first: its scrollbars take room from the client area.
    this.extentEl.style.width = EXTENT_W + 'px';
    this.extentEl.style.height = EXTENT_H + 'px';
    const w = this.scroller.clientWidth, h = this.scroller.clientHeight;
    if (w === this.clientW && h === this.clientH && this.rows.length) return;
    this.clientW = w;
    this.clientH = h;
    // The scroll ranges, kept so that scrolling never reads layout.
    this.maxST = Math.max(0, EXTENT_H - h);
    this.maxSL = Math.max(0, EXTENT_W - w);
    const bodyW = Math.max(0, w - HEAD_W), bodyH = Math.max(0, h - HEAD_H);
    this.fullRows = Math.max(1, Math.floor(bodyH / ROW_H));
    this.fullCols = Math.max(1, Math.floor(bodyW / COL_W));
    const nRows = Math.max(1, Math.ceil(bodyH / ROW_H)), nCols = Math.max(1, Math.ceil(bodyW / COL_W));
    this.layer.style.width = w + 'px';
    this.layer.style.height = h + 'px';
    if (nRows !== this.nRows || nCols !== this.nCols) this.build(nRows, nCols);
    this.top = clamp(this.top, 0, this.maxTop);
    this.left = clamp(this.left, 0, this.maxLeft);
    this.syncScroll();
    this.announce();
    this.schedule();
  }

  /**
   * Tells the source what the window shows, when that changed: it loads
   * what is missing. Called on every render, and at once on a resize so
   * that the first cells are on their way before the first frame.
   */
  announce() {
    const row1 = Math.min(SIZE - 1, this.top + this.nRows - 1), col1 = Math.min(SIZE - 1, this.left + this.nCols - 1);
    const key = this.top + ':' + this.left + ':' + row1 + ':' + col1;
    if (key !== this.viewportKey) {
      this.viewportKey = key;
      this.source.setViewport({ row0: this.top, col0: this.left, row1, col1 });
    }
  }

  get maxTop() {
    return SIZE - this.fullRows;
  }

  get maxLeft() {
    return SIZE - this.fullCols;
  }

  /**
   * @param {number} nRows
   * @param {number} nCols
   */
  build(nRows, nCols) {
    this.nRows = nRows;
    this.nCols = nCols;
    for (const h of this.heads) h.el.remove();
    this.heads = [];
    for (let j = 0; j < nCols; j++) {
      const h = el('div', 'ch', { role: 'columnheader' });
      h.style.left = HEAD_W + j * COL_W + 'px';
      this.headRow.append(h);
      this.heads.push({ el: h, col: -1 });
    }
    this.body.replaceChildren();
    this.rows = [];
    let id = 0;
    for (let i = 0; i < nRows; i++) {
      const r = el('div', 'row', { role: 'row' });
      const head = el('div', 'rh', { role: 'rowheader', 'aria-colindex': '1' });
      r.append(head);
      /** @type {CellSlot[]} */
      const cells = [];
      for (let j = 0; j < nCols; j++) {
        const c = el('div', 'cell', { role: 'gridcell', id: 'cell-' + id++, dir: 'auto', 'aria-selected': 'false' });
        c.style.left = HEAD_W + j * COL_W + 'px';
        r.append(c);
        cells.push({ el: c, ref: '', col: -1, text: undefined, cls: 'cell' });
      }
      this.body.append(r);
      this.rows.push({ el: r, head, cells, row: -1 });
    }
    this.shownTop = this.shownLeft = -1;
  }

  /** Scroll position of the scaled scrollbar for the window's position. */
  syncScroll() {
    const sc = this.scroller;
    const st = this.maxST > 0 ? Math.round((this.top / this.maxTop) * this.maxST) : 0;
    const sl = this.maxSL > 0 ? Math.round((this.left / this.maxLeft) * this.maxSL) : 0;
    if (st !== this.expTop) sc.scrollTop = this.expTop = st;
    if (sl !== this.expLeft) sc.scrollLeft = this.expLeft = sl;
  }

  onScroll() {
    const sc = this.scroller;
    const st = sc.scrollTop, sl = sc.scrollLeft;
    // Our own syncScroll echoes back here: only a move by the user (thumb,
    // track, keys the browser handled) maps the scrollbar onto the sheet.
    if (Math.abs(st - this.expTop) >= 1) {
      this.top = this.maxST > 0 ? clamp(Math.round((st / this.maxST) * this.maxTop), 0, this.maxTop) : 0;
      this.expTop = st;
    }
    if (Math.abs(sl - this.expLeft) >= 1) {
      this.left = this.maxSL > 0 ? clamp(Math.round((sl / this.maxSL) * this.maxLeft), 0, this.maxLeft) : 0;
      this.expLeft = sl;
    }
    this.schedule();
  }

  /** @param {WheelEvent} e */
  onWheel(e) {
    if (e.ctrlKey) return; // zoom
    e.preventDefault();
    let dy = e.deltaY, dx = e.deltaX;
    if (e.shiftKey && dx === 0) {
      dx = dy;
      dy = 0;
    }
    if (e.deltaMode === WheelEvent.DOM_DELTA_LINE) {
      dy *= ROW_H;
      dx *= COL_W / 3;
    } else if (e.deltaMode === WheelEvent.DOM_DELTA_PAGE) {
      dy *= this.fullRows * ROW_H;
      dx *= this.fullCols * COL_W;
    }
    // Whole rows and columns; the remainder carries to the next event.
    if (Math.sign(dy) !== Math.sign(this.wheelY)) this.wheelY = 0;
    if (Math.sign(dx) !== Math.sign(this.wheelX)) this.wheelX = 0;
    this.wheelY += dy;
    this.wheelX += dx;
    const rows = Math.trunc(this.wheelY / ROW_H), cols = Math.trunc(this.wheelX / COL_W);
    this.wheelY -= rows * ROW_H;
    this.wheelX -= cols * COL_W;
    if (rows || cols) this.scrollTo(this.top + rows, this.left + cols);
  }

  /**
   * Moves the window so that (top, left) is its first row and column.
   * @param {number} top
   * @param {number} left
   */
  scrollTo(top, left) {
    top = clamp(top, 0, this.maxTop);
    left = clamp(left, 0, this.maxLeft);
    if (top === this.top && left === this.left) return;
    this.top = top;
    this.left = left;
    this.syncScroll();
    this.schedule();
  }

  /**
   * Scrolls as little as needed to show (row, col) whole.
   * @param {number} row
   * @param {number} col
   */
  reveal(row, col) {
    let top = this.top, left = this.left;
    if (row < top) top = row;
    else if (row > top + this.fullRows - 1) top = row - this.fullRows + 1;
    if (col < left) left = col;
    else if (col > left + this.fullCols - 1) left = col - this.fullCols + 1;
    this.scrollTo(top, left);
  }

  // ---- selection and keys ----

  /**
   * Makes (row, col) the active cell and shows it.
   * @param {number} row
   * @param {number} col
   * @param {'reveal' | 'top'} [how] top: put it in the window's top-left corner unless visible
   */
  select(row, col, how = 'reveal') {
    row = clamp(row, 0, SIZE - 1);
    col = clamp(col, 0, SIZE - 1);
    const moved = row !== this.row || col !== this.col;
    this.row = row;
    this.col = col;
    const visible = row >= this.top && row < this.top + this.fullRows && col >= this.left && col < this.left + this.fullCols;
    if (how === 'top' && !visible) this.scrollTo(row, col);
    else this.reveal(row, col);
    this.schedule();
    if (moved) this.source.activeChanged(row, col);
  }

  /** @param {KeyboardEvent} e */
  onKey(e) {
    if (e.target !== this.scroller || e.isComposing) return;
    const mod = e.ctrlKey || e.metaKey;
    const ext = () => this.source.extent();
    /** @type {[number, number] | null} */
    let to = null;
    switch (e.key) {
      case 'ArrowUp': to = [mod ? 0 : this.row - 1, this.col]; break;
      case 'ArrowDown': to = [mod ? edge(this.row, ext().rows) : this.row + 1, this.col]; break;
      case 'ArrowLeft': to = [this.row, mod ? 0 : this.col - 1]; break;
      case 'ArrowRight': to = [this.row, mod ? edge(this.col, ext().cols) : this.col + 1]; break;
      case 'PageUp':
        to = e.altKey ? [this.row, this.col - this.fullCols] : [this.row - this.fullRows, this.col];
        if (!e.altKey) this.scrollTo(this.top - this.fullRows, this.left);
        break;
      case 'PageDown':
        to = e.altKey ? [this.row, this.col + this.fullCols] : [this.row + this.fullRows, this.col];
        if (!e.altKey) this.scrollTo(this.top + this.fullRows, this.left);
        break;
      case 'Home': to = [mod ? 0 : this.row, 0]; break;
      case 'End': {
        const x = ext();
        to = [mod ? Math.max(0, x.rows - 1) : this.row, Math.max(0, x.cols - 1)];
        break;
      }
      case 'Tab': to = [this.row, this.col + (e.shiftKey ? -1 : 1)]; break;
      case 'Enter':
      case 'F2':
        e.preventDefault();
        this.openEditor(this.source.editText(this.row, this.col), false);
        return;
      case 'Delete':
      case 'Backspace':
        e.preventDefault();
        this.source.clear(this.row, this.col);
        return;
      case 'F6':
        e.preventDefault();
        this.source.gotoRequested();
        return;
      default:
        if (mod && !e.altKey && (e.key === 'g' || e.key === 'G')) {
          e.preventDefault();
          this.source.gotoRequested();
          return;
        }
        if (!mod && !e.altKey && e.key.length > 0 && [...e.key].length === 1) {
          // Typing replaces the cell's content, as in every spreadsheet.
          e.preventDefault();
          this.openEditor(e.key, true);
          return;
        }
        if (e.key === 'Process' || e.key === 'Unidentified') {
          // An input method is starting: let it compose into the editor.
          this.openEditor('', true);
        }
        return;
    }
    e.preventDefault();
    this.select(to[0], to[1]);
  }

  /** @param {MouseEvent} e */
  onMouse(e) {
    if (e.button !== 0) return;
    const at = this.cellAt(e);
    if (!at) return;
    e.preventDefault(); // keep the focus where select() puts it, no text selection
    if (this.editing) this.commitEdit(0, 0, false);
    this.scroller.focus({ preventScroll: true });
    this.select(at.row, at.col);
  }

  /**
   * The cell under the pointer, from geometry (no per-element lookups).
   * @param {MouseEvent} e
   * @returns {{row: number, col: number} | null}
   */
  cellAt(e) {
    const box = this.scroller.getBoundingClientRect();
    const x = e.clientX - box.left - this.scroller.clientLeft, y = e.clientY - box.top - this.scroller.clientTop;
    if (x < HEAD_W || y < HEAD_H || x >= this.clientW || y >= this.clientH) return null;
    const row = this.top + Math.floor((y - HEAD_H) / ROW_H), col = this.left + Math.floor((x - HEAD_W) / COL_W);
    return row < SIZE && col < SIZE ? { row, col } : null;
  }

  /** Moves the keyboard focus to the grid. */
  focus() {
    this.scroller.focus({ preventScroll: true });
  }

  // ---- the editor ----

  /**
   * @param {string} text
   * @param {boolean} typed opened by typing: arrows then commit and move
   */
  openEditor(text, typed) {
    this.reveal(this.row, this.col);
    this.editing = { row: this.row, col: this.col, original: typed ? '\u0000' : text, typed };
    const ed = this.editor;
    ed.value = text;
    ed.setAttribute('aria-label', 'Edit ' + ref(this.row, this.col));
    ed.hidden = false;
    this.placeEditor();
    this.fitEditor();
    ed.focus({ preventScroll: true });
    ed.setSelectionRange(text.length, text.length);
  }

  placeEditor() {
    if (!this.editing) return;
    const { row, col } = this.editing;
    const s = this.editor.style;
    s.left = this.scroller.offsetLeft + this.scroller.clientLeft + HEAD_W + (col - this.left) * COL_W + 'px';
    s.top = this.scroller.offsetTop + this.scroller.clientTop + HEAD_H + (row - this.top) * ROW_H + 'px';
  }

  fitEditor() {
    const s = this.editor.style;
    s.width = COL_W + 'px';
    const room = this.clientW - (parseFloat(s.left) - this.scroller.offsetLeft);
    const need = this.editor.scrollWidth + 8;
    if (need > COL_W) s.width = Math.min(Math.max(COL_W, room), need) + 'px';
  }

  /** @param {KeyboardEvent} e */
  onEditorKey(e) {
    if (!this.editing || e.isComposing) return;
    const typed = this.editing.typed;
    switch (e.key) {
      case 'Enter': e.preventDefault(); this.commitEdit(e.shiftKey ? -1 : 1, 0, true); break;
      case 'Tab': e.preventDefault(); this.commitEdit(0, e.shiftKey ? -1 : 1, true); break;
      case 'Escape': e.preventDefault(); this.closeEditor(); break;
      case 'ArrowUp': e.preventDefault(); this.commitEdit(-1, 0, true); break;
      case 'ArrowDown': e.preventDefault(); this.commitEdit(1, 0, true); break;
      case 'ArrowLeft':
      case 'ArrowRight':
        if (typed) {
          e.preventDefault();
          this.commitEdit(0, e.key === 'ArrowLeft' ? -1 : 1, true);
        }
        break;
      default:
        if ((e.ctrlKey || e.metaKey) && (e.key === 'g' || e.key === 'G')) e.preventDefault();
    }
  }

  /**
   * Ends editing, appending the text if it changed, and moves the active
   * cell by (dr, dc).
   * @param {number} dr
   * @param {number} dc
   * @param {boolean} refocus
   */
  commitEdit(dr, dc, refocus) {
    const ed = this.editing;
    if (!ed) return;
    const text = this.editor.value;
    this.closeEditor(refocus);
    if (text !== ed.original) this.source.commit(ed.row, ed.col, text);
    if (dr || dc) this.select(ed.row + dr, ed.col + dc);
  }

  closeEditor(refocus = true) {
    if (!this.editing) return;
    this.editing = null;
    this.editor.hidden = true;
    if (refocus) this.focus();
    this.schedule();
  }

  // ---- drawing ----

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.render());
  }

  /**
   * Redraws (the data changed): in the next frame, except for the first
   * complete viewport, drawn at once so that the next frame shows it
   * instead of running the render first.
   */
  invalidate() {
    if (!this.drawn && !this.loadingInView()) {
      cancelAnimationFrame(this.frame);
      this.render();
      return;
    }
    this.schedule();
  }

  /** Whether a visible cell is still loading. */
  loadingInView() {
    for (let i = 0; i < this.nRows && this.top + i < SIZE; i++) {
      for (let j = 0; j < this.nCols && this.left + j < SIZE; j++) {
        if (this.source.shown(this.top + i, this.left + j).kind === 'loading') return true;
      }
    }
    return false;
  }

  render() {
    this.frame = 0;
    if (!this.drawn) performance.mark('sheetlog:render');
    if (!this.body.isConnected) {
      const wait = this.holdUntil - performance.now();
      if (wait > 0 && this.loadingInView()) {
        if (!this.holdTimer) {
          this.holdTimer = window.setTimeout(() => {
            this.holdTimer = 0;
            this.schedule();
          }, wait);
        }
        return;
      }
      this.layer.append(this.body);
    }
    const top = this.top, left = this.left, rows = this.rows;
    const n = rows.length;
    const d = top - this.shownTop;
    if (this.shownTop >= 0 && d !== 0 && Math.abs(d) < n) {
      // Rows still visible keep their elements; those that left go round.
      if (d > 0) {
        const moved = rows.splice(0, d);
        for (const r of moved) this.body.append(r.el);
        rows.push(...moved);
      } else {
        const moved = rows.splice(n + d, -d);
        this.body.prepend(...moved.map((r) => r.el));
        rows.unshift(...moved);
      }
    }
    if (left !== this.shownLeft) {
      this.heads.forEach((h, j) => {
        const col = left + j;
        h.el.hidden = col >= SIZE;
        if (col < SIZE && h.col !== col) {
          h.el.textContent = columnName(col);
          h.el.setAttribute('aria-colindex', String(col + 2));
          h.col = col;
        }
      });
    }
    /** @type {string[]} */
    const names = [];
    for (let j = 0; j < this.nCols; j++) names.push(left + j < SIZE ? columnName(left + j) : '');
    let busy = false;
    let active = '';
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      const row = top + i;
      if (row >= SIZE) {
        r.el.hidden = true;
        continue;
      }
      r.el.hidden = false;
      if (r.row !== row) {
        r.row = row;
        r.head.textContent = String(row + 1);
        r.el.setAttribute('aria-rowindex', String(row + 2));
      }
      const rowText = String(row + 1);
      const isRow = row === this.row;
      r.head.classList.toggle('on', isRow);
      for (let j = 0; j < r.cells.length; j++) {
        const c = r.cells[j];
        const col = left + j;
        if (col >= SIZE) {
          c.el.hidden = true;
          c.ref = '';
          continue;
        }
        const s = this.source.shown(row, col);
        const a1 = names[j] + rowText;
        if (c.ref !== a1) {
          c.el.hidden = false;
          c.el.setAttribute('data-ref', a1);
          c.ref = a1;
        }
        if (c.col !== col) {
          c.el.setAttribute('aria-colindex', String(col + 2));
          c.col = col;
        }
        if (c.text !== s.text) {
          c.el.textContent = s.text ?? '';
          c.text = s.text;
        }
        const on = isRow && col === this.col;
        if (s.kind === 'loading') busy = true;
        let cls = 'cell';
        if (s.kind && s.kind !== 'loading') cls += ' k-' + s.kind;
        if (this.source.isPending(row, col)) cls += ' pending';
        if (on) {
          cls += ' active';
          active = c.el.id;
        }
        if (c.cls !== cls) {
          if (on !== c.cls.includes(' active')) c.el.setAttribute('aria-selected', String(on));
          c.el.className = cls;
          c.cls = cls;
        }
      }
    }
    this.heads.forEach((h, j) => h.el.classList.toggle('on', left + j === this.col));
    if (active) this.scroller.setAttribute('aria-activedescendant', active);
    else this.scroller.removeAttribute('aria-activedescendant');
    this.scroller.setAttribute('aria-busy', String(busy));
    if (!busy && !this.drawn) {
      this.drawn = true;
      performance.mark('sheetlog:drawn');
      // The frame after this one shows the first complete viewport; what
      // waits for it (the feed, the status) starts once that frame is out,
      // so that its requests and replies do not delay it.
      requestAnimationFrame(() => {
        performance.mark('sheetlog:first-viewport');
        setTimeout(() => this.onDrawn(), 0);
      });
    }
    this.shownTop = top;
    this.shownLeft = left;
    this.placeEditor();
    this.announce();
  }
}

/**
 * Ctrl+Down/Right: to the end of the used part of the sheet, then to the
 * sheet's last row or column.
 * @param {number} at
 * @param {number} used
 */
function edge(at, used) {
  return at < used - 1 ? used - 1 : SIZE - 1;
}
