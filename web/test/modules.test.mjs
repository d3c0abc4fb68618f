// The page's pure modules (no DOM): A1 references, the parsing of what a
// user types, value text, number and date formats.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { columnName, parseRef, ref, SIZE } from '../../pkg/webui/static/a1.js';
import { displayText, isSimpleFormat } from '../../pkg/webui/static/format.js';
import { editText, parseInput, plainDecimal, rawText } from '../../pkg/webui/static/values.js';

test('A1 references: the project vectors, both ways', () => {
  const { cases } = JSON.parse(readFileSync(new URL('../../pkg/a1/testdata/a1.json', import.meta.url), 'utf8'));
  assert.ok(cases.length > 5);
  for (const c of cases) {
    assert.equal(ref(c.row, c.column), c.ref);
    const back = parseRef(c.ref);
    if (c.row < SIZE && c.column < SIZE) assert.deepEqual(back, { row: c.row, col: c.column }, c.ref);
    else assert.equal(back, null, c.ref + ' lies outside a sheet');
  }
  assert.equal(ref(SIZE - 1, SIZE - 1), 'FXSHRXX2147483648');
  assert.equal(columnName(SIZE - 1), 'FXSHRXX');
  assert.deepEqual(parseRef(' $b$3 '), { row: 2, col: 1 });
  for (const bad of ['', 'A', '1', 'A0', 'A01', 'FXSHRXY1', 'A2147483649', 'AAAAAAAA1', 'A1:B2', 'A-1', '€1']) {
    assert.equal(parseRef(bad), null, bad);
  }
});

test('typed text is parsed as `sheetctl set` parses it', () => {
  const cases = [
    ['3.10', 3.1], ['-0', 0], ['0', 0], ['0.5', 0.5], ['-12', -12], ['123456789012345678901234567890', 1.2345678901234568e29],
    ['007', '007'], ['1e5', '1e5'], ['NaN', 'NaN'], ['Infinity', 'Infinity'], ['.5', '.5'], ['5.', '5.'], ['+1', '+1'],
    [' 1', ' 1'], ['1 ', '1 '], ['1'.repeat(400), '1'.repeat(400)],
    ['true', true], ['FALSE', false], ['True', true], ['null', null], ['NULL', 'NULL'],
    ['#DIV/0!', { type: 'CellError', value: '#DIV/0!' }], ['#N/A', { type: 'CellError', value: '#N/A' }],
    ['#div/0!', '#div/0!'], ["'007", '007'], ["'true", 'true'], ["'", ''], ['hello', 'hello'],
    ['<b>x</b>', '<b>x</b>'], ['', undefined],
  ];
  for (const [text, want] of cases) assert.deepEqual(parseInput(text), want, JSON.stringify(text));
});

test('the editor text of a value reads back as the value', () => {
  const values = [0, -1.5, 3.1, 1e21, 1.5e-7, 123456789.125, true, false, null, 'x', '007', '1e5', '42', 'true', 'null',
    "'quoted", '#DIV/0!', '', ' padded ', { type: 'CellError', value: '#REF!' }];
  for (const v of values) {
    const text = editText(v);
    if (v === '') continue; // an empty string is the one value the editor cannot type
    assert.deepEqual(parseInput(text), v, JSON.stringify(v) + ' as ' + JSON.stringify(text));
  }
  assert.equal(editText(undefined), '');
  assert.equal(plainDecimal(1e21), '1000000000000000000000');
  assert.equal(plainDecimal(-1.5e-7), '-0.00000015');
  assert.equal(plainDecimal(1.25e22), '12500000000000000000000');
  assert.equal(rawText(1e21), '1E+21');
  assert.equal(rawText(null), '');
  assert.equal(rawText(true), 'TRUE');
});

test('simple number and date formats are applied, others show the raw value', () => {
  const cases = [
    [1234.5, '0.00', '1234.50'], [1234.5, '0', '1235'], [-0.5, '0', '-1'], [-0.004, '0.00', '0.00'],
    [1234567.891, '#,##0.00', '1,234,567.89'], [1234567, '#,##0', '1,234,567'], [999.5, '#,##0', '1,000'],
    [0.256, '0.0%', '25.6%'], [0.5, '0%', '50%'], [12.5, '$#,##0.00', '$12.50'], [-12.5, '$#,##0.00', '-$12.50'],
    [12.5, '0.00€', '12.50€'], [3.1, '0.0#', '3.1'], [3.14159, '0.0#', '3.14'], [3, '0.##', '3'],
    [45291, 'yyyy-mm-dd', '2023-12-31'], [45291.75, 'dd/mm/yyyy hh:mm', '31/12/2023 18:00'],
    [45291.75, 'h:mm AM/PM', '6:00 PM'], [0.5, 'hh:mm:ss', '12:00:00'], [45292, 'd mmm yy', '1 Jan 24'],
    [45292, 'dddd, mmmm d, yyyy', 'Monday, January 1, 2024'], [1, 'yyyy-mm-dd', '1899-12-31'],
    [3.14159, '[Red]0.00', '3.14159'], [3.14159, 'General', '3.14159'], [3.14159, '@', '3.14159'],
    [3.14159, '0.00;(0.00)', '3.14159'], [-1, 'yyyy-mm-dd', '-1'], [1e300, '0.00', '1E+300'],
    ['text', '0.00', 'text'], [true, '0.00', 'TRUE'], [null, '0.00', ''],
  ];
  for (const [v, f, want] of cases) assert.equal(displayText(v, f), want, `${v} as ${f}`);
  assert.equal(isSimpleFormat('0.00'), true);
  assert.equal(isSimpleFormat('[Red]0.00'), false);
  assert.equal(displayText({ type: 'CellError', value: '#NUM!' }, undefined), '#NUM!');
});

test('early.js asks for exactly the ranges the model asks for first, whatever the window', async () => {
  const { Sheet } = await import('../../pkg/webui/static/sheet.js');
  const { firstRanges } = await import('../../pkg/webui/static/early.js');
  const { firstWindow } = await import('../../pkg/webui/static/dims.js');
  for (const [w, h] of [[1280, 800], [0, 0], [1, 1], [320, 200], [1600, 1536], [1600, 1537], [3000, 2000], [15000, 900], [40000, 5000]]) {
    /** @type {string[]} */
    const asked = [];
    const api = { cells: (/** @type {string} */ range) => { asked.push(range); return new Promise(() => {}); } };
    const sheet = new Sheet(/** @type {any} */ (api));
    sheet.setViewport(firstWindow(w, h));
    assert.ok(asked.length > 0);
    assert.deepEqual(firstRanges(firstWindow(w, h)), asked, `${w}x${h}`);
  }
});
