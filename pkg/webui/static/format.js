// Number formats: the simple number and date patterns are applied; any
// other format leaves the value shown raw. Formats apply to numbers only.
//
// Number patterns: an optional currency sign ($ € £ ¥) before or after,
// an integer part `0` or `#,##0` (thousands separators), an optional
// fraction of `0`s (digits always shown) followed by `#`s (digits shown
// when not zero), an optional `%`. Examples: 0, 0.00, #,##0.00, 0.0#, 0%,
// $#,##0.00. Date and time patterns: yyyy yy m mm mmm mmmm d dd ddd dddd
// h hh s ss (m and mm after an hour or before seconds are minutes) and
// AM/PM, separated by - / . , : and spaces; the value is a serial date
// (days since 1899-12-30, the fraction is the time of day).

import { rawText } from './values.js';

/** @typedef {import('./values.js').Value} Value */

/**
 * @typedef {{kind: 'number', prefix: string, suffix: string, group: boolean,
 *   minFrac: number, maxFrac: number, percent: boolean}} NumberPattern
 * @typedef {{kind: 'date', tokens: string[], hour12: boolean}} DatePattern
 * @typedef {NumberPattern | DatePattern | null} Pattern
 */

/** @type {Map<string, Pattern>} */
const compiled = new Map();

const NUMBER = /^([$€£¥]?)(0|#,##0)(?:\.(0*)(#*))?(%?)([$€£¥]?)$/;
const DATE_TOKEN = /yyyy|yy|mmmm|mmm|mm|m|dddd|ddd|dd|d|hh|h|ss|s|AM\/PM|[-/.,: ]/gy;

/**
 * @param {string} format
 * @returns {Pattern}
 */
function compile(format) {
  const n = NUMBER.exec(format);
  if (n) {
    const [, pre, int, zeros = '', hashes = '', pct, post] = n;
    if (pre && post) return null;
    return {
      kind: 'number', prefix: pre, suffix: post, group: int !== '0',
      minFrac: zeros.length, maxFrac: zeros.length + hashes.length, percent: pct === '%',
    };
  }
  const f = format.replace(/am\/pm/i, 'AM/PM');
  /** @type {string[]} */
  const tokens = [];
  DATE_TOKEN.lastIndex = 0;
  let pos = 0;
  for (let m; pos < f.length && (m = DATE_TOKEN.exec(f)); pos = DATE_TOKEN.lastIndex) tokens.push(m[0]);
  if (pos !== f.length || !tokens.some((t) => /[ymdhs]/.test(t))) return null;
  // m / mm mean minutes right after an hour or right before seconds.
  const fields = tokens.map((t, i) => ({ t, i })).filter(({ t }) => /^[ymdhsA]/.test(t));
  for (let k = 0; k < fields.length; k++) {
    const { t, i } = fields[k];
    if (t !== 'm' && t !== 'mm') continue;
    const prev = fields[k - 1]?.t ?? '';
    const next = fields[k + 1]?.t ?? '';
    if (prev.startsWith('h') || next.startsWith('s')) tokens[i] = t === 'm' ? 'M' : 'MM';
  }
  return { kind: 'date', tokens, hour12: tokens.includes('AM/PM') };
}

/**
 * @param {string} format
 * @returns {Pattern}
 */
function pattern(format) {
  let p = compiled.get(format);
  if (p === undefined) {
    p = compile(format);
    if (compiled.size > 1000) compiled.clear();
    compiled.set(format, p);
  }
  return p;
}

/**
 * Whether a format is one this page applies.
 * @param {string} format
 * @returns {boolean}
 */
export function isSimpleFormat(format) {
  return pattern(format) !== null;
}

/**
 * @param {number} v
 * @param {NumberPattern} p
 * @returns {string}
 */
function formatNumber(v, p) {
  let x = p.percent ? v * 100 : v;
  const neg = x < 0;
  x = Math.abs(x);
  // toFixed is exact for |x| < 1e21; beyond that the raw form is all we have.
  if (x >= 1e21) return rawText(v);
  let s = x.toFixed(p.maxFrac);
  if (p.maxFrac > p.minFrac) {
    const dot = s.indexOf('.');
    let end = s.length;
    while (end > dot + 1 + p.minFrac && s[end - 1] === '0') end--;
    if (end === dot + 1) end = dot;
    s = s.slice(0, end);
  }
  let [int, frac] = s.split('.');
  if (p.group) int = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const body = int + (frac !== undefined ? '.' + frac : '') + (p.percent ? '%' : '');
  const zero = /^[0.,%]*$/.test(body);
  return (neg && !zero ? '-' : '') + p.prefix + body + p.suffix;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
/** Days from the serial date origin (1899-12-30) to 1970-01-01. */
const EPOCH_SERIAL = 25569;
/** Serial of 10000-01-01: dates past year 9999 are shown raw. */
const MAX_SERIAL = 2958466;

/**
 * @param {number} v
 * @param {DatePattern} p
 * @returns {string}
 */
function formatDate(v, p) {
  if (v < 0 || v >= MAX_SERIAL) return rawText(v);
  const ms = Math.round((v - EPOCH_SERIAL) * 86400) * 1000;
  const d = new Date(ms);
  const pad = (/** @type {number} */ n) => String(n).padStart(2, '0');
  const h24 = d.getUTCHours();
  const h = p.hour12 ? (h24 % 12 || 12) : h24;
  let out = '';
  for (const t of p.tokens) {
    switch (t) {
      case 'yyyy': out += String(d.getUTCFullYear()).padStart(4, '0'); break;
      case 'yy': out += pad(d.getUTCFullYear() % 100); break;
      case 'mmmm': out += MONTHS[d.getUTCMonth()]; break;
      case 'mmm': out += MONTHS[d.getUTCMonth()].slice(0, 3); break;
      case 'mm': out += pad(d.getUTCMonth() + 1); break;
      case 'm': out += d.getUTCMonth() + 1; break;
      case 'dddd': out += DAYS[d.getUTCDay()]; break;
      case 'ddd': out += DAYS[d.getUTCDay()].slice(0, 3); break;
      case 'dd': out += pad(d.getUTCDate()); break;
      case 'd': out += d.getUTCDate(); break;
      case 'hh': out += pad(h); break;
      case 'h': out += h; break;
      case 'MM': out += pad(d.getUTCMinutes()); break;
      case 'M': out += d.getUTCMinutes(); break;
      case 'ss': out += pad(d.getUTCSeconds()); break;
      case 's': out += d.getUTCSeconds(); break;
      case 'AM/PM': out += h24 < 12 ? 'AM' : 'PM'; break;
      default: out += t;
    }
  }
  return out;
}

/**
 * The text a cell shows: its value with the format applied when the
 * format is a simple number or date pattern and the value a number, else
 * the raw value.
 * @param {Value | undefined} value
 * @param {string | undefined} format
 * @returns {string}
 */
export function displayText(value, format) {
  if (typeof value !== 'number' || format === undefined) return rawText(value);
  const p = pattern(format);
  if (p === null) return rawText(value);
  return p.kind === 'number' ? formatNumber(value, p) : formatDate(value, p);
}

