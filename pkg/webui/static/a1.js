// A1 references: column letters in bijective base 26, then the 1-based
// row. Rows and columns are 0-based numbers here, as on the wire.

/** Rows (and columns) of a sheet: indexes 0 .. 2^31-1. */
export const SIZE = 2 ** 31;

/** @type {Map<number, string>} */
const names = new Map();

/**
 * The letters of a 0-based column: 0 is A, 25 Z, 26 AA.
 * @param {number} col
 * @returns {string}
 */
export function columnName(col) {
  let s = names.get(col);
  if (s !== undefined) return s;
  s = '';
  for (let n = col + 1; n > 0; n = Math.floor((n - 1) / 26)) {
    s = String.fromCharCode(65 + ((n - 1) % 26)) + s;
  }
  if (names.size > 4096) names.clear();
  names.set(col, s);
  return s;
}

/**
 * @param {number} row
 * @param {number} col
 * @returns {string}
 */
export function ref(row, col) {
  return columnName(col) + (row + 1);
}

/**
 * Parses "B3" (any case, surrounding spaces ignored, `$` anchors allowed)
 * into 0-based coordinates, or null when it is no reference or lies
 * outside a sheet of SIZE rows and columns.
 * @param {string} text
 * @returns {{row: number, col: number} | null}
 */
export function parseRef(text) {
  const m = /^\s*\$?([A-Za-z]{1,7})\$?([1-9][0-9]{0,9})\s*$/.exec(text);
  if (!m) return null;
  let col = 0;
  for (const ch of m[1].toUpperCase()) col = col * 26 + (ch.charCodeAt(0) - 64);
  const row = Number(m[2]);
  if (col > SIZE || row > SIZE) return null;
  return { row: row - 1, col: col - 1 };
}
