/**
 * Headless Chromium for the timeline tests and benchmark: Debian's `chromium` driven by
 * playwright-core (`executablePath`; `/usr/bin/chromium` is a shell wrapper, so the binary itself),
 * with `--no-sandbox` since CI runs as root. A page records its console errors, uncaught
 * exceptions and every request that is not for a `file://` URL.
 *
 * Without the binary a test calls `chromiumUnavailable`: in CI (`process.env.CI`) that is a
 * failing test naming the fix; elsewhere a skipped test with the reason printed.
 *
 * @example
 * ```ts
 * const browser = await launchChromium();
 * const p = await openPage(browser, '/tmp/timeline.html');
 * p.errors;   // [] when the page logged no error
 * p.requests; // [] when nothing left file://
 * ```
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { Test } from 'uvu';

export const CHROMIUM = process.env.ATELIER_CHROMIUM ?? '/usr/lib/chromium/chromium';

/** Where the tests save screenshots (ignored by git). */
export const SCREENSHOTS = resolve(import.meta.dirname, '../../test-output/screenshots');

/** Why Chromium cannot run here, or null when it can. */
export function chromiumBlocker(): string | null {
  return existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (Debian: apt-get install chromium, as .ci/run does; or set ATELIER_CHROMIUM to a Chromium binary)`;
}

/** Register the "no browser" outcome: fail loudly in CI, skip with the reason elsewhere. */
export function chromiumUnavailable(test: Test, what: string, reason: string): void {
  if (process.env.CI) {
    test(`${what}: Chromium must be available in CI`, () => {
      throw new Error(reason);
    });
  } else {
    console.log(`SKIP ${what}: ${reason}`);
    test.skip(`${what} (${reason})`, () => undefined);
  }
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
}

export interface OpenPage {
  readonly page: Page;
  /** Console errors and uncaught exceptions. */
  readonly errors: string[];
  /** URLs requested that are not `file://`. */
  readonly requests: string[];
  /** ms from navigation to the page's ready flag. */
  readonly readyMs: number;
}

/** Open `file` and wait until its script has drawn the first frame (`document.body.dataset.ready`). */
export async function openPage(browser: Browser, file: string, viewport = { width: 1600, height: 900 }): Promise<OpenPage> {
  const page = await browser.newPage({ viewport });
  const errors: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => void (m.type() === 'error' && errors.push(m.text())));
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('request', (r) => void (!r.url().startsWith('file://') && requests.push(r.url())));
  const t0 = performance.now();
  await page.goto(pathToFileURL(file).href);
  await page.waitForFunction('document.body.dataset.ready === "1"', undefined, { polling: 'raf' });
  return { page, errors, requests, readyMs: performance.now() - t0 };
}

/** Save a screenshot as `test-output/screenshots/<name>.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}
