// Cell values as on the wire (snapshot-format.md), their text in the
// editor, and the parsing of what a user types, which follows the CLI's
// `sheetctl set` (clients.md).

/**
 * @typedef {{type: 'CellError', value: string}} CellError
 * @typedef {string | number | boolean | null | CellError} Value
 * A cell: `value` absent means no value (not null); `format` absent means
 * the default format. An empty cell is `{}`.
 * @typedef {{value?: Value, format?: string}} Cell
 */

/** The cell error codes of snapshot-format.md. */
export const ERROR_CODES = Object.freeze([
  '#NULL!', '#DIV/0!', '#VALUE!', '#REF!', '#NAME?', '#NUM!', '#N/A',
  '#GETTING_DATA', '#SPILL!', '#UNKNOWN!', '#FIELD!', '#CALC!',
]);
const errorCodes = new Set(ERROR_CODES);

/** A plain decimal: optional "-", no leading zero, optional fraction, no exponent. */
const PLAIN_DECIMAL = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/**
 * The value a user means by text, as `sheetctl set` parses it: a number
 * when the text is a plain decimal, a boolean for true/false (any case),
 * null for "null", a cell error for its code, else the text itself as a
 * string (untrimmed). A leading apostrophe forces a string ("'007" is the
 * text "007", "'true" the text "true"), as in other spreadsheets. Empty
 * text means no value (undefined).
 * @param {string} text
 * @returns {Value | undefined}
 */
export function parseInput(text) {
  if (text === '') return undefined;
  if (text.startsWith("'")) return text.slice(1);
  if (PLAIN_DECIMAL.test(text)) {
    const n = Number(text);
    // A decimal too large for a double stays text rather than becoming
    // Infinity, which JSON cannot carry.
    if (Number.isFinite(n)) return n === 0 ? 0 : n;
  }
  const lower = text.toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  if (text === 'null') return null;
  if (errorCodes.has(text)) return { type: 'CellError', value: text };
  return text;
}

/**
 * The shortest plain decimal that reads back as n (no exponent).
 * @param {number} n
 * @returns {string}
 */
export function plainDecimal(n) {
  const s = String(n);
  const e = s.indexOf('e');
  if (e < 0) return s;
  const neg = s.startsWith('-');
  const mantissa = s.slice(neg ? 1 : 0, e);
  const exp = Number(s.slice(e + 1));
  const dot = mantissa.indexOf('.');
  const digits = mantissa.replace('.', '');
  const intLen = (dot < 0 ? mantissa.length : dot) + exp;
  let out;
  if (intLen <= 0) out = '0.' + '0'.repeat(-intLen) + digits;
  else if (intLen >= digits.length) out = digits + '0'.repeat(intLen - digits.length);
  else out = digits.slice(0, intLen) + '.' + digits.slice(intLen);
  return (neg ? '-' : '') + out;
}

/**
 * The text that, typed into the editor, gives the value back.
 * @param {Value | undefined} v
 * @returns {string}
 */
export function editText(v) {
  if (v === undefined || v === null) return v === null ? 'null' : '';
  if (typeof v === 'number') return plainDecimal(v);
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (typeof v === 'string') {
    const back = parseInput(v);
    return back === v ? v : "'" + v;
  }
  return v.value;
}

/**
 * The unformatted text of a value in a cell: numbers in short form,
 * TRUE/FALSE, error codes, nothing for null.
 * @param {Value | undefined} v
 * @returns {string}
 */
export function rawText(v) {
  if (v === undefined || v === null) return '';
  if (typeof v === 'number') {
    const a = Math.abs(v);
    return a !== 0 && (a >= 1e21 || a < 1e-6) ? String(v).toUpperCase() : plainDecimal(v);
  }
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (typeof v === 'string') return v;
  return v.value;
}

/**
 * @param {Value | undefined} a
 * @param {Value | undefined} b
 * @returns {boolean}
 */
export function sameValue(a, b) {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  return a.type === b.type && a.value === b.value;
}

/**
 * @param {Cell} a
 * @param {Cell} b
 * @returns {boolean}
 */
export function sameCell(a, b) {
  return sameValue(a.value, b.value) && a.format === b.format &&
    ('value' in a) === ('value' in b) && ('format' in a) === ('format' in b);
}

/**
 * Is the cell empty (neither a value nor a format)?
 * @param {Cell} c
 * @returns {boolean}
 */
export function isEmpty(c) {
  return !('value' in c) && !('format' in c);
}

/**
 * The cell a wire object stands for (a /cells entry or a log entry), with
 * absent, null-format and unknown fields normalized away.
 * @param {{value?: unknown, format?: unknown}} o
 * @returns {Cell}
 */
export function cellOf(o) {
  /** @type {Cell} */
  const c = {};
  if ('value' in o && o.value !== undefined) c.value = /** @type {Value} */ (o.value);
  if (typeof o.format === 'string') c.format = o.format;
  return c;
}
