// Shared by the browser tests and the benchmark: the real server binary
// on a temporary data directory and a free loopback port, Debian's
// Chromium driven by playwright-core (never a downloaded browser), and a
// small client of the API to fill sheets and read logs.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const required = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run the browser tests with \`make test-web\``);
  return v;
};

export const OUT = process.env.WEB_OUT || join(process.cwd(), '..', 'build', 'web');

/** Debian's Chromium (make test-web sets CHROMIUM). */
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

/**
 * A running cmd/server. stop() ends it (SIGTERM, then SIGKILL); start()
 * starts it again on the same port and data directory.
 */
export class Server {
  constructor({ token = '', args = [], dataRoot = tmpdir() } = {}) {
    this.dataRoot = dataRoot;
    this.bin = required('SHEETLOG_SERVER_BIN');
    this.token = token;
    this.args = args;
    this.port = 0;
    this.proc = null;
    this.logs = '';
  }

  async start() {
    if (!this.dir) this.dir = await mkdtemp(join(this.dataRoot, 'sheetlog-web-'));
    const args = ['-addr', `127.0.0.1:${this.port}`, '-data', this.dir, '-log-format', 'json',
      '-log-level', 'warn', '-shutdown-timeout', '2s', ...this.args];
    if (this.token) args.push('-token', this.token);
    const proc = spawn(this.bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc = proc;
    const url = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the server did not start in 20 s:\n' + this.logs)), 20000);
      let buf = '';
      proc.stderr.setEncoding('utf8');
      proc.stderr.on('data', (chunk) => {
        this.logs += chunk;
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          try {
            const rec = JSON.parse(line);
            if (rec.url) {
              clearTimeout(timer);
              resolve(rec.url);
            }
          } catch {
            // not a log record
          }
        }
      });
      proc.on('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code}):\n${this.logs}`));
      });
    });
    this.url = url;
    this.port = Number(new URL(url).port);
    return this;
  }

  async stop() {
    const p = this.proc;
    if (!p || p.exitCode !== null) return;
    this.proc = null;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }

  async close() {
    await this.stop();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
  }

  /** A request to the API; resolves with {status, body}. */
  async call(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (this.token) headers.Authorization = 'Bearer ' + this.token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = text;
    }
    return { status: res.status, body: json, headers: res.headers };
  }

  async ok(method, path, body) {
    const r = await this.call(method, path, body);
    if (r.status !== 200) throw new Error(`${method} ${path}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }

  /**
   * Appends entries ({row, column, value?, format?}) at the log's end, in
   * batches of 99 where the server takes batches, else one by one.
   */
  async fill(sheet, cells) {
    const st = await this.ok('GET', `/v1/sheets/${sheet}`);
    let seq = BigInt(st.endSequenceId);
    let batch = this.batches !== false ? 99 : 1;
    for (let i = 0; i < cells.length;) {
      const entries = cells.slice(i, i + batch).map((c) => ({ type: 'SetCellValueAndFormat', ...c }));
      const body = entries.length > 1 ? { sequenceId: String(seq), entries } : { sequenceId: String(seq), entry: entries[0] };
      const r = await this.call('POST', `/v1/sheets/${sheet}/log`, body);
      if (r.status === 400 && entries.length > 1 && /entries/.test(r.body?.message ?? '')) {
        this.batches = false; // a server without batch appends
        batch = 1;
        continue;
      }
      if (r.status !== 200) throw new Error(`append at ${seq}: ${r.status} ${JSON.stringify(r.body)}`);
      seq += BigInt(entries.length);
      i += entries.length;
    }
    return seq;
  }

  /** Appends one entry at the log's end (as another client would). */
  async set(sheet, row, column, value, format) {
    const st = await this.ok('GET', `/v1/sheets/${sheet}`);
    const entry = { type: 'SetCellValueAndFormat', row, column, value };
    if (format !== undefined) entry.format = format;
    return this.ok('POST', `/v1/sheets/${sheet}/log`, { sequenceId: st.endSequenceId, entry });
  }

  /** The whole log of a sheet. */
  async log(sheet) {
    const all = [];
    let start = 'start';
    for (;;) {
      const page = await this.ok('GET', `/v1/sheets/${sheet}/log?start=${start}`);
      all.push(...page.entries);
      if (page.isComplete) return all;
      start = page.endSequenceId;
    }
  }

  async cells(sheet, range) {
    return (await this.ok('GET', `/v1/sheets/${sheet}/cells?range=${range}`)).cells;
  }
}

/** The flags every run of Chromium here gets: no sandbox (root), no GPU, no network of its own. */
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-default-apps', '--disable-extensions', '--metrics-recording-only', '--no-default-browser-check',
];

/**
 * Debian's Chromium, headless, with a fresh profile directory.
 * @param {string[]} [extra] more command-line flags
 */
export async function launch(extra = []) {
  const profile = await mkdtemp(join(tmpdir(), 'sheetlog-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extra],
    viewport: { width: 1280, height: 800 }, timeout: 60000,
    // Playwright hides scrollbars in headless mode; the tests drag the thumb.
    ignoreDefaultArgs: ['--hide-scrollbars'],
  });
  context.setDefaultTimeout(15000);
  const close = async () => {
    await context.close();
    await rm(profile, { recursive: true, force: true });
  };
  return { context, close };
}

/**
 * A running browser whose every context is a fresh, empty profile (no HTTP
 * cache, no compiled code; each page a new renderer process): what a
 * user's browser is to a page they open for the first time.
 * @returns {Promise<{newContext: () => Promise<import('playwright-core').BrowserContext>, close: () => Promise<void>}>}
 */
export async function launchShared(extra = []) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS, ...extra], timeout: 60000,
    ignoreDefaultArgs: ['--hide-scrollbars'],
  });
  return {
    newContext: () => browser.newContext({ viewport: { width: 1280, height: 800 } }),
    close: () => browser.close(),
  };
}

/** Writes a screenshot of the page to build/web/NAME.png. */
export async function shot(page, name) {
  await mkdir(OUT, { recursive: true });
  const path = join(OUT, name + '.png');
  await page.screenshot({ path });
  return path;
}

/** Waits until the grid has drawn every visible cell (no tile loading). */
export async function settled(page) {
  await page.waitForSelector('[role="grid"][aria-busy="false"]');
}

/** The text of the cell element with data-ref REF (null when not rendered). */
export function cellText(page, ref) {
  return page.evaluate((r) => document.querySelector(`[data-ref="${r}"]`)?.textContent ?? null, ref);
}

/** Waits until cell REF shows text. */
export async function waitCell(page, ref, text, timeout = 15000) {
  await page.waitForFunction(
    ([r, t]) => document.querySelector(`[data-ref="${r}"]`)?.textContent === t,
    [ref, text], { timeout },
  );
}
