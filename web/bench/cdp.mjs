// A bare browser for make bench-web's first-viewport figures: Debian's
// Chromium driven over its DevTools pipe by a few raw protocol commands.
//
// Playwright, which the tests and the other figures use, enables the
// network, page and runtime domains of every page it opens and handles
// their events in Node: on a 2-core machine its work and the browser's
// work for it take cores from the page while it loads (30-37 ms of a
// cold first viewport here, measured by alternating the two). A user's
// browser has none of that, so the cold figures are taken with this
// client, which attaches to the page, sets its viewport, navigates it
// and evaluates one expression; bench.mjs still reports one case under
// Playwright beside them.

import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS } from '../test/harness.mjs';

const VIEWPORT = { width: 1280, height: 800, deviceScaleFactor: 1, mobile: false };

/** Chromium on a fresh profile, headless, with its DevTools protocol on fds 3 and 4. */
export class BareBrowser {
  static async launch() {
    const profile = await mkdtemp(join(tmpdir(), 'sheetlog-bare-chromium-'));
    const proc = spawn(CHROMIUM,
      [...CHROMIUM_ARGS, '--headless', '--remote-debugging-pipe', `--user-data-dir=${profile}`, 'about:blank'],
      { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
    const b = new BareBrowser(proc, profile);
    // The first page exists once the browser has started.
    for (;;) {
      const { targetInfos } = await b.send('Target.getTargets');
      const page = targetInfos.find((t) => t.type === 'page');
      if (page) {
        b.firstPage = page.targetId;
        return b;
      }
      await sleep(20);
    }
  }

  constructor(proc, profile) {
    this.proc = proc;
    this.profile = profile;
    this.lastId = 0;
    /** @type {Map<number, (m: any) => void>} */
    this.replies = new Map();
    this.firstPage = '';
    this.exited = new Promise((r) => proc.once('exit', r));
    let buf = '';
    proc.stdio[4].setEncoding('utf8');
    proc.stdio[4].on('data', (chunk) => {
      buf += chunk;
      let end;
      while ((end = buf.indexOf('\0')) >= 0) {
        const m = JSON.parse(buf.slice(0, end));
        buf = buf.slice(end + 1);
        const reply = m.id !== undefined && this.replies.get(m.id);
        if (reply) {
          this.replies.delete(m.id);
          reply(m);
        }
      }
    });
    proc.once('exit', (code) => {
      for (const reply of this.replies.values()) reply({ error: { message: `the browser exited (${code})` } });
      this.replies.clear();
    });
  }

  /** Sends a command (to a page when sessionId is given) and resolves with its result. */
  send(method, params = {}, sessionId = undefined) {
    const id = ++this.lastId;
    this.proc.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + '\0');
    return new Promise((resolve, reject) => this.replies.set(id, (m) => {
      if (m.error) reject(new Error(`${method}: ${m.error.message}`));
      else resolve(m.result);
    }));
  }

  /** A page in a new, empty browser context (no cache, no compiled code). */
  async newContextPage() {
    const { browserContextId } = await this.send('Target.createBrowserContext');
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank', browserContextId });
    return { targetId, close: () => this.send('Target.disposeBrowserContext', { browserContextId }) };
  }

  /** A new page in the browser's own context (its cache and compiled code kept). */
  async newPage() {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    return { targetId, close: () => this.send('Target.closeTarget', { targetId }) };
  }

  /**
   * Navigates page targetId to url and evaluates expression (a promise)
   * in the new document once it exists; resolves with its value.
   */
  async navigateAndEvaluate(targetId, url, expression) {
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    await this.send('Emulation.setDeviceMetricsOverride', VIEWPORT, sessionId);
    await this.send('Page.navigate', { url }, sessionId);
    // Until the navigation commits, the page is still about:blank, or has
    // no context at all.
    const guarded = `location.href === ${JSON.stringify(url)} ? (${expression}) : null`;
    const deadline = Date.now() + 30000;
    for (;;) {
      try {
        const { result, exceptionDetails } = await this.send('Runtime.evaluate',
          { expression: guarded, awaitPromise: true, returnByValue: true, timeout: 30000 }, sessionId);
        if (exceptionDetails) throw new Error(exceptionDetails.exception?.description ?? exceptionDetails.text);
        if (result.value !== null) return { value: result.value, sessionId };
      } catch (err) {
        if (!/execution context/i.test(String(err))) throw err;
      }
      if (Date.now() > deadline) throw new Error(`${url}: no answer in 30 s`);
      await sleep(5);
    }
  }

  /** Evaluates expression in a page attached by navigateAndEvaluate. */
  async evaluate(sessionId, expression) {
    const { result } = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true }, sessionId);
    return result.value;
  }

  /** Writes a PNG of the page to path. */
  async screenshot(sessionId, path) {
    const { data } = await this.send('Page.captureScreenshot', { format: 'png' }, sessionId);
    await writeFile(path, Buffer.from(data, 'base64'));
  }

  async close() {
    if (this.proc.exitCode === null) {
      this.send('Browser.close').catch(() => {});
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(t);
    }
    await rm(this.profile, { recursive: true, force: true });
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
