// Browser tests of the page the API serves at GET /, in real headless
// Chromium (Debian's /usr/bin/chromium) driven by playwright-core, against a
// live stack: XLPORT_TEST_API (e.g. http://127.0.0.1:9100/lambda-url/api) and
// XLPORT_TEST_TOKEN (an API key). Without them, or with the API down, every
// test fails: these tests never skip.
//
//   web/run-tests.sh                          # installs what is needed, runs them all
//   node --test web/tests/                    # once installed
//
// Each test leaves a full-page screenshot in /tmp/xlport-web-<name>.png.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const API = (process.env.XLPORT_TEST_API || '').replace(/\/+$/, '');
const TOKEN = process.env.XLPORT_TEST_TOKEN || '';
const CHROMIUM = '/usr/bin/chromium';
const HEADER =
  'CPF;PRIVATE;INCOMPLETO;DATA DA ÚLTIMA COMPRA;TICKET MÉDIO;TICKET DA ÚLTIMA COMPRA;LOJA MAIS FREQUÊNTE;LOJA DA ÚLTIMA COMPRA';
const MULTIPART_THRESHOLD = 8 * 1024 * 1024; // XLPORT_MULTIPART_THRESHOLD_BYTES of the test stack
const PART_SIZE = 5 * 1024 * 1024; // XLPORT_MULTIPART_PART_BYTES of the test stack

let browser;
let workDir;

before(async () => {
  assert.ok(API, 'XLPORT_TEST_API is not set: the API base URL of a running stack, e.g. http://127.0.0.1:9100/lambda-url/api');
  assert.ok(TOKEN, 'XLPORT_TEST_TOKEN is not set: an API key of that stack');
  let resp;
  try {
    resp = await fetch(`${API}/health`, { signal: AbortSignal.timeout(15_000) });
  } catch (e) {
    throw new Error(`the API at ${API} is not reachable: ${e.cause?.message || e.message}`);
  }
  const body = await resp.text();
  assert.equal(resp.status, 200, `GET ${API}/health answered ${resp.status}: ${body}`);
  workDir = await mkdtemp(join(tmpdir(), 'xlport-web-'));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  if (workDir) await rm(workDir, { recursive: true, force: true });
});

/** Runs `fn` with a fresh page; screenshots it at the end, passed or failed. */
async function withPage(name, fn) {
  assert.ok(browser, 'the browser did not start (see the failure of the `before` hook)');
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  const pageErrors = [];
  const cspViolations = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') console.log(`  [${name}] browser console: ${m.text()}`);
    if (m.type() === 'error' && /Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  try {
    await fn(page);
    assert.deepEqual(pageErrors, [], 'the page threw uncaught errors');
    // Everything the page does (script, style, API calls, S3 uploads) is
    // within its Content-Security-Policy.
    assert.deepEqual(cspViolations, [], 'the page broke its Content-Security-Policy');
  } finally {
    await page.screenshot({ path: `/tmp/xlport-web-${name}.png`, fullPage: true }).catch(() => {});
    await context.close();
  }
}

/**
 * Loads the page from the API. cargo lambda watch now and then loses a
 * response between the function and the client: the load then hangs, or gets
 * a 500 of its own (RFC 7807 problem details, never from the API, whose
 * errors are {"error", "code"}). Those, and only those, are loaded again.
 */
async function loadPage(page) {
  let resp;
  for (let attempt = 1; ; attempt++) {
    try {
      resp = await page.goto(`${API}/`, { timeout: 10_000 });
    } catch (e) {
      if (attempt < 3 && e.name === 'TimeoutError') {
        console.log('  the page load hung in cargo lambda watch; loading again');
        continue;
      }
      throw e;
    }
    if (attempt < 3 && resp && resp.status() === 500
      && (await resp.text()).includes('httpstatuses.com/500')) {
      console.log('  cargo lambda answered the page load with its own 500; loading again');
      continue;
    }
    break;
  }
  assert.ok(resp, `no response for ${API}/`);
  assert.equal(resp.status(), 200, `GET ${API}/ answered ${resp.status()}`);
  assert.match(resp.headers()['content-type'] || '', /text\/html/);
}

/** Opens the page the API serves and saves the API key in it. */
async function openWithKey(page) {
  await loadPage(page);
  await page.getByTestId('api-key').fill(TOKEN);
  await page.getByTestId('save-key').click();
  await page.locator('[data-testid=key-status][data-state=ok], [data-testid=key-error]:not(:empty)')
    .first().waitFor();
  assert.equal(await page.getByTestId('key-error').textContent(), '', 'the page reported an error for the API key');
  await page.waitForFunction(() => document.querySelectorAll('[data-testid=export-dataset] option').length > 0);
}

async function chooseDataset(page, testid) {
  const names = await page.getByTestId(testid).locator('option').evaluateAll((os) => os.map((o) => o.value));
  const name = names.includes('user_purchase') ? 'user_purchase' : names[0];
  await page.getByTestId(testid).selectOption(name);
  return name;
}

/** Fetches `url` from inside the page and returns its status and first bytes. */
async function fetchHead(page, url) {
  return page.evaluate(async (href) => {
    const r = await fetch(href);
    const b = new Uint8Array(await r.arrayBuffer());
    return { status: r.status, size: b.length, head: String.fromCharCode(...b.slice(0, 2)) };
  }, url);
}

/** Waits for the import shown by the page to end; returns its state. */
async function waitImportDone(page, timeout) {
  const done = page.locator(['succeeded', 'failed', 'cancelled']
    .map((s) => `[data-testid=import-state][data-state=${s}]`).join(', '));
  const error = page.locator('[data-testid=import-error]:not(:empty)');
  await done.or(error).first().waitFor({ timeout });
  const state = await done.count() ? await done.first().getAttribute('data-state') : 'none';
  const message = await page.getByTestId('import-error').textContent();
  assert.equal(state, 'succeeded', `the import ended ${state}: ${message}`);
  return state;
}

async function summary(page, key) {
  const cell = page.getByTestId(`summary-${key}`);
  assert.equal(await cell.count(), 1, `the summary has no ${key} line`);
  return Number(await cell.getAttribute('data-value'));
}

/** A valid CPF (check digits computed) from a 9-digit base number. */
function cpf(base) {
  const d = String(base).padStart(9, '0').split('').map(Number);
  for (const len of [9, 10]) {
    let sum = 0;
    for (let i = 0; i < len; i++) sum += d[i] * (len + 1 - i);
    const r = (sum * 10) % 11;
    d.push(r === 10 ? 0 : r);
  }
  const s = d.join('');
  return `${s.slice(0, 3)}.${s.slice(3, 6)}.${s.slice(6, 9)}-${s.slice(9)}`;
}

test('the page loads from the API, takes the key and shows the API healthy', { timeout: 60_000 }, async () => {
  // The page's own protections (issue #15).
  const head = await fetch(`${API}/`);
  const csp = head.headers.get('content-security-policy') || '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'sha256-[A-Za-z0-9+/=]+'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.equal(head.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(head.headers.get('x-frame-options'), 'DENY');
  assert.equal(head.headers.get('cache-control'), 'no-store');
  await head.text();
  await withPage('health', async (page) => {
    await openWithKey(page);
    assert.equal(await page.title(), 'xlport');
    await page.locator('[data-testid=health][data-status=ok]').waitFor();
    assert.equal((await page.getByTestId('health').textContent()).trim(), 'ok');
    // The key is kept for the tab (sessionStorage, never localStorage): a
    // reload uses it without asking again.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('xlport.apiKey')), TOKEN);
    assert.equal(await page.evaluate(() => localStorage.getItem('xlport.apiKey')), null);
    await loadPage(page);
    await page.locator('[data-testid=key-status][data-state=ok]').waitFor();
    assert.equal(await page.getByTestId('api-key').inputValue(), TOKEN);
    // The jobs list loads with the key (no error).
    await page.getByTestId('jobs-refresh').click();
    await page.locator('[data-testid=jobs-updated]:not(:empty)').waitFor();
    assert.equal(await page.getByTestId('jobs-error').textContent(), '');
  });
});

test('an export with a filter ends with a download link to an xlsx', { timeout: 180_000 }, async () => {
  await withPage('export', async (page) => {
    await openWithKey(page);
    const dataset = await chooseDataset(page, 'export-dataset');
    await page.getByTestId('export-format').selectOption('xlsx');
    await page.getByTestId('export-filter-private').selectOption('false');
    await page.getByTestId('export-filter-cpf_valido').selectOption('true');
    await page.getByTestId('export-filter-data_ultima_compra-from').fill('2000-01-01');
    const created = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/exports'));
    await page.getByTestId('export-start').click();
    const resp = await created;
    const sent = resp.request().postDataJSON();
    assert.deepEqual(sent, {
      dataset, format: 'xlsx',
      filter: { private: false, cpf_valido: true, data_ultima_compra: { from: '2000-01-01' } },
    });
    assert.equal(resp.status(), 202, `POST /exports answered ${resp.status()}: ${await resp.text()}`);
    const job = await resp.json();

    const link = page.getByTestId('export-download');
    await link.or(page.locator('[data-testid=export-state][data-state=failed]')).first().waitFor({ timeout: 150_000 });
    assert.equal(await link.count(), 1, `the export did not succeed: ${await page.getByTestId('export-error').textContent()}`);
    assert.equal(await page.getByTestId('export-state').getAttribute('data-state'), 'succeeded');
    assert.notEqual(await link.getAttribute('download'), null, 'the link has no download attribute');
    const href = await link.getAttribute('href');
    const file = await fetchHead(page, href);
    assert.equal(file.status, 200, `GET of the download link answered ${file.status}`);
    assert.equal(file.head, 'PK', 'the export is not a zip (xlsx) file');

    // The jobs list shows it; its details carry the download link too.
    await page.getByTestId('jobs-refresh').click();
    // The list drawn when the export started has the row as queued: wait for
    // the refreshed one (a retried GET makes the refresh take longer).
    const row = page.locator(`[data-testid=job-row][data-job-id="${job.id}"][data-state=succeeded]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-state'), 'succeeded');
    await row.getByTestId('job-open').click();
    await page.locator(`[data-testid=job-detail][data-job-id="${job.id}"] [data-testid=job-download]`).waitFor();
  });
});

test('a CSV export in the excel-br dialect is a semicolon CSV with decimal commas', { timeout: 180_000 }, async () => {
  await withPage('export-csv', async (page) => {
    await openWithKey(page);
    const dataset = await chooseDataset(page, 'export-dataset');
    await page.getByTestId('export-format').selectOption('csv');
    await page.getByTestId('export-csv-dialect').selectOption('excel-br');
    const created = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/exports'));
    await page.getByTestId('export-start').click();
    const resp = await created;
    const sent = resp.request().postDataJSON();
    assert.equal(sent.dataset, dataset);
    assert.deepEqual(sent.csv, { dialect: 'excel-br' });
    assert.equal(resp.status(), 202, `POST /exports answered ${resp.status()}: ${await resp.text()}`);
    const link = page.getByTestId('export-download');
    await link.or(page.locator('[data-testid=export-state][data-state=failed]')).first().waitFor({ timeout: 150_000 });
    assert.equal(await link.count(), 1, `the export did not succeed: ${await page.getByTestId('export-error').textContent()}`);
    const file = await page.evaluate(async (href) => {
      const b = new Uint8Array(await (await fetch(href)).arrayBuffer());
      // TextDecoder drops a BOM, so it is looked for in the bytes.
      return { bom: b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf, text: new TextDecoder().decode(b) };
    }, await link.getAttribute('href'));
    assert.ok(file.bom, 'UTF-8 with a BOM');
    assert.ok(file.text.startsWith('CPF;PRIVATE;INCOMPLETO;'), `not an excel-br CSV: ${file.text.slice(0, 80)}`);
    assert.ok(file.text.includes('\r\n'), 'records end with CRLF');
  });
});

test('a small CSV import (dry run) reports read, rejected rows and an error report', { timeout: 180_000 }, async () => {
  await withPage('import', async (page) => {
    await openWithKey(page);
    const csv = [
      HEADER,
      '041.091.641-25;0;1;2020-01-31;10,00;;;',
      '12.3;0;0;;;;;',
    ].join('\r\n') + '\r\n';
    await page.getByTestId('import-file').setInputFiles({
      name: 'small.csv', mimeType: 'text/csv', buffer: Buffer.from(csv, 'utf8'),
    });
    const dataset = await chooseDataset(page, 'import-dataset');
    await page.getByTestId('import-dry-run').check();
    const created = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/imports'));
    await page.getByTestId('import-start').click();
    const resp = await created;
    assert.equal(resp.status(), 201, `POST /imports answered ${resp.status()}: ${await resp.text()}`);
    const sent = resp.request().postDataJSON();
    assert.equal(sent.dataset, dataset);
    assert.equal(sent.filename, 'small.csv');
    assert.equal(sent.size, Buffer.byteLength(csv));
    assert.equal(sent.dry_run, true);
    assert.equal((await resp.json()).upload.type, 'single');

    await waitImportDone(page, 150_000);
    assert.equal(await summary(page, 'rows_read'), 2);
    assert.equal(await summary(page, 'rejected'), 1);
    assert.equal(await summary(page, 'reason-malformed_cpf'), 1);
    const report = page.getByTestId('import-error-report');
    await report.waitFor();
    const file = await fetchHead(page, await report.getAttribute('href'));
    assert.equal(file.status, 200, `GET of the error report answered ${file.status}`);
    assert.equal(file.head, 'PK', 'the error report is not an xlsx file');
  });
});

test('a file above the multipart threshold uploads in parts and imports (dry run)', { timeout: 420_000 }, async () => {
  // ~12 MiB of distinct, valid rows: three 5 MiB parts on the test stack.
  const target = 12 * 1024 * 1024;
  const lines = [HEADER];
  let size = Buffer.byteLength(HEADER) + 1;
  let rows = 0;
  while (size < target) {
    const day = String((rows % 28) + 1).padStart(2, '0');
    const line = `${cpf(100_000_000 + rows * 7)};${rows % 2};${(rows >> 1) % 2};2021-03-${day};${(rows % 9000) + 10},${String(rows % 100).padStart(2, '0')};;;`;
    lines.push(line);
    size += Buffer.byteLength(line) + 1;
    rows++;
  }
  const path = join(workDir, 'large.csv');
  await writeFile(path, lines.join('\n') + '\n');
  assert.ok(size > MULTIPART_THRESHOLD);
  const expectedParts = Math.ceil(size / PART_SIZE);

  await withPage('multipart', async (page) => {
    await openWithKey(page);
    const partPuts = new Set();
    page.on('requestfinished', async (r) => {
      const n = new URL(r.url()).searchParams.get('partNumber');
      if (r.method() === 'PUT' && n) partPuts.add(Number(n));
    });
    await page.getByTestId('import-file').setInputFiles(path);
    await chooseDataset(page, 'import-dataset');
    await page.getByTestId('import-dry-run').check();
    const created = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/imports'));
    const completed = page.waitForResponse((r) => r.request().method() === 'POST' && /\/imports\/[^/]+\/complete$/.test(r.url()),
      { timeout: 300_000 });
    await page.getByTestId('import-start').click();
    const resp = await created;
    assert.equal(resp.status(), 201, `POST /imports answered ${resp.status()}: ${await resp.text()}`);
    const upload = (await resp.json()).upload;
    assert.equal(upload.type, 'multipart');
    assert.equal(upload.part_count, expectedParts);

    // The page shows the upload progress, then every part done.
    await page.getByTestId('upload-box').waitFor();
    const done = await completed;
    assert.equal(done.status(), 200, `POST .../complete answered ${done.status()}: ${await done.text()}`);
    const sentParts = done.request().postDataJSON().parts;
    assert.deepEqual(sentParts.map((p) => p.part_number), [...Array(expectedParts).keys()].map((i) => i + 1));
    assert.ok(sentParts.every((p) => typeof p.etag === 'string' && p.etag.length > 0), 'a part has no ETag');
    const parts = page.getByTestId('upload-parts');
    assert.equal(Number(await parts.getAttribute('data-parts-total')), expectedParts);
    assert.equal(Number(await parts.getAttribute('data-parts-done')), expectedParts);
    assert.match(await parts.textContent(), new RegExp(`${expectedParts} of ${expectedParts} parts uploaded`));
    const bar = page.getByTestId('upload-progress');
    assert.equal(await bar.evaluate((b) => b.value), size);
    assert.equal(await bar.evaluate((b) => b.max), size);
    assert.deepEqual([...partPuts].sort((a, b) => a - b), [...Array(expectedParts).keys()].map((i) => i + 1));

    await waitImportDone(page, 300_000);
    assert.equal(await summary(page, 'rows_read'), rows);
    assert.equal(await summary(page, 'rejected'), 0);
  });
});
