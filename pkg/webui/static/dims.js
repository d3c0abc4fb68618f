// The grid's dimensions, shared by the modules that lay it out, load it
// and ask for its first cells early (early.js). No imports: early.js
// must run as soon as it arrives.

/** Row height, column width and the headers' sizes, in CSS pixels. */
export const ROW_H = 24;
export const COL_W = 100;
export const HEAD_H = 24;
export const HEAD_W = 96;
/** Tile size: /cells is asked for whole tiles. */
export const TILE_ROWS = 64;
export const TILE_COLS = 16;
/** /cells answers at most this many cells per request. */
export const MAX_RANGE_CELLS = 10000;

/**
 * The window of cells the grid shows first, from the browser's viewport:
 * at the top left, and no larger than the viewport (the grid asks for it
 * before anything reads layout).
 * @param {number} width
 * @param {number} height
 * @returns {{row0: number, col0: number, row1: number, col1: number}}
 */
export function firstWindow(width, height) {
  return {
    row0: 0, col0: 0,
    row1: Math.max(0, Math.ceil(height / ROW_H) - 1), col1: Math.max(0, Math.ceil(width / COL_W) - 1),
  };
}
