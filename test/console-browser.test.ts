// The operator console in a real browser: Debian's Chromium, driven headless by playwright-core,
// against the server in its own process with write and read tokens and the log at trace level.
// The page is driven by its labels and roles only. Screenshots go to test-artifacts/.
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContext, type Page, type Request } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { amountMax } from '../src/ledger/index.js'
import { Client, query, ServerProcess, temporaryDirectories, type HistoryEntry } from './support.js'

// What the functions passed to page.evaluate use of the page's globals; they run in the browser.
interface PageElement {
  id: string
  textContent: string | null
  closest(selector: string): PageElement | null
}
declare const document: { activeElement: PageElement | null; documentElement: { scrollWidth: number } }
declare const window: { scrollTo(x: number, y: number): void }
declare const localStorage: { length: number }
declare const sessionStorage: { length: number }
declare const navigator: { clipboard: { readText(): Promise<string> } }

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const haveChromium = existsSync(chromiumPath)
if (!haveChromium) console.warn(`console browser test skipped: no Chromium at ${chromiumPath} (apt-get install chromium)`)

const writeToken = 'console-browser-write-token-0123456789'
const readToken = 'console-browser-read-token-0123456789'
const artifacts = fileURLToPath(new URL('../test-artifacts/', import.meta.url))
const waitMs = 15_000

const temporaryDirectory = temporaryDirectories('accman-console-')
let server: ServerProcess
let base: string
let browser: Browser | undefined
let api: Client
/** Every credential the tests made or used, to look for in URLs, history and the log. */
const credentials: string[] = []
/** The account the tests build up, and its history as /past has it. */
let cred = ''

beforeAll(async () => {
  if (!haveChromium) return
  mkdirSync(artifacts, { recursive: true })
  server = new ServerProcess({
    ACCMAN_DB: temporaryDirectory(),
    ACCMAN_TOKENS: writeToken,
    ACCMAN_READ_TOKENS: readToken,
    ACCMAN_LOG_LEVEL: 'trace',
    ACCMAN_SYNC: 'false',
  })
  base = await server.url()
  api = new Client(base, 4)
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] })
})

afterAll(async () => {
  api?.close()
  await browser?.close()
  if (server !== undefined && server.child.exitCode === null) await server.kill('SIGTERM')
})

/** Polls until `check` holds; fails with `what` after a bounded wait. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + waitMs
  for (;;) {
    if (await check()) return
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

interface Watched {
  context: BrowserContext
  page: Page
  /** Page errors and Content-Security-Policy violations. */
  problems: string[]
  /** API requests the page sent, with their headers. */
  requests: Array<{ url: string; headers: Record<string, string> }>
  /** Resolves once every request seen so far has its headers in `requests`. */
  settled: () => Promise<unknown>
}

async function openConsole(width: number): Promise<Watched> {
  if (browser === undefined) throw new Error('no browser')
  const context = await browser.newContext({
    viewport: { width, height: 900 },
    locale: 'en-US',
    timezoneId: 'Europe/Berlin',
    acceptDownloads: true,
  })
  const page = await context.newPage()
  const problems: string[] = []
  const requests: Watched['requests'] = []
  const reading: Array<Promise<void>> = []
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`))
  page.on('console', (message) => {
    if (/content security policy|trusted type/i.test(message.text())) problems.push(message.text())
  })
  page.on('request', (request: Request) => {
    if (!/\/(tot|past|mod)\?/.test(request.url())) return
    reading.push(
      request.allHeaders().then(
        (headers) => void requests.push({ url: request.url(), headers }),
        // The page may close before the last request's headers are read.
        () => {},
      ),
    )
  })
  const response = await page.goto(`${base}/console`, { waitUntil: 'load' })
  expect(response?.status()).toBe(200)
  return { context, page, problems, requests, settled: () => Promise.all(reading) }
}

async function signIn(page: Page, token: string): Promise<void> {
  const field = page.getByLabel('Token')
  await field.fill(token)
  await field.press('Enter')
}

const balanceRegion = (page: Page) => page.getByRole('region', { name: 'Balance' })
const historyRows = (page: Page) => page.getByRole('table', { name: 'History' }).locator('tbody tr')

async function balanceShows(page: Page, text: string): Promise<void> {
  await balanceRegion(page).getByText(text, { exact: true }).waitFor({ timeout: waitMs })
}

async function rowCount(page: Page, count: number): Promise<void> {
  await until(`${count} history rows`, async () => (await historyRows(page).count()) === count)
}

async function firstSeq(page: Page, seq: number): Promise<void> {
  await until(`the first history row to be seq ${seq}`, async () => (await historyRows(page).first().locator('td').first().textContent()) === String(seq))
}

/** Opens an action, fills its form and confirms it. */
async function act(page: Page, button: string, amount: string, note?: string): Promise<void> {
  await page.getByRole('button', { name: button, exact: true }).click()
  await page.getByLabel('Amount').fill(amount)
  if (note !== undefined) await page.getByLabel('Note').fill(note)
  await page.getByRole('button', { name: 'Confirm' }).click()
}

/** The new account's credential, as the page shows it once. */
async function shownCredential(page: Page): Promise<string> {
  const shown = page.getByRole('region', { name: 'New account' }).getByText(/^[A-Za-z0-9_-]{43}=$/)
  await shown.waitFor({ timeout: waitMs })
  const made = (await shown.textContent()) ?? ''
  credentials.push(made)
  return made
}

async function newAccount(page: Page, amount: string, note?: string): Promise<string> {
  await act(page, 'New account', amount, note)
  return shownCredential(page)
}

const localDay = (page: Page, offsetDays: number) =>
  page.evaluate((offset) => {
    const day = new Date()
    day.setDate(day.getDate() + offset)
    return `${day.getFullYear()}-${String(day.getMonth() + 1).padStart(2, '0')}-${String(day.getDate()).padStart(2, '0')}`
  }, offsetDays)

async function filterDays(page: Page, from: string, to: string): Promise<void> {
  await page.getByLabel('From').fill(from)
  await page.getByLabel('To').fill(to)
  await page.getByRole('button', { name: 'Apply' }).click()
}

/** An account's whole history, through /past with the read token. */
async function readHistory(of: string): Promise<HistoryEntry[]> {
  const reply = await api.send('GET', `/past?${query({ cred: of, limit: '1000' })}`, { authorization: `Bearer ${readToken}` })
  expect(reply.status).toBe(200)
  return (JSON.parse(reply.body) as { entries: HistoryEntry[] }).entries
}

const grouped = (value: bigint) => value.toLocaleString('en-US')

describe.skipIf(!haveChromium)('the console in Chromium', () => {
  let expectedTot = 0n

  test('a write token signs in, creates an account, credits it, and the page shows balance, history and chart', async () => {
    const { context, page, problems, requests, settled } = await openConsole(1280)

    // A wrong token is refused next to the form; Enter submits.
    await signIn(page, 'console-browser-wrong-token-0123456789')
    await page.getByRole('alert').getByText('The server refused this token.').waitFor({ timeout: waitMs })
    await signIn(page, writeToken)
    await page.getByText('Write access').waitFor({ timeout: waitMs })

    // New account: the credential is made in the page, credited, and shown once.
    await page.getByRole('button', { name: 'New account' }).click()
    await page.getByLabel('Amount').fill('1000')
    await page.getByText('credited 1,000: the balance starts at 1,000').waitFor({ timeout: waitMs })
    await page.getByLabel('Note').fill('opening balance')
    await page.getByRole('button', { name: 'Confirm' }).click()
    cred = await shownCredential(page)
    // It is also in the (masked) Credential field, so the account is the one shown.
    expect(await page.getByLabel('Credential').inputValue()).toBe(cred)
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base })
    await page.getByRole('button', { name: 'Copy' }).click()
    await page.getByText('Copied.').waitFor({ timeout: waitMs })
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(cred)
    await balanceShows(page, '1,000')
    await page.getByRole('button', { name: 'Done' }).click()
    await until('the credential to be hidden', async () => (await page.getByText(cred).count()) === 0)

    // Credit through the form: the confirmation shows the effect on the balance.
    await page.getByRole('button', { name: 'Credit', exact: true }).click()
    await page.getByLabel('Amount').fill('250')
    await page.getByText('Credit 250: the balance goes from 1,000 to 1,250.').waitFor({ timeout: waitMs })
    await page.getByLabel('Note').fill('top-up')
    await page.getByRole('button', { name: 'Confirm' }).click()
    await balanceShows(page, '1,250')
    await page.getByRole('status').getByText('Credited 250; the balance is 1,250.').waitFor({ timeout: waitMs })
    expectedTot = 1250n

    // More history, written by another client.
    for (let index = 1; index <= 60; index++) {
      const by = index % 3 === 0 ? -7n : 5n
      expectedTot += by
      const reply = await api.send('PATCH', `/mod?${query({ cred, by: String(by), note: `usage ${index}` })}`, {
        authorization: `Bearer ${writeToken}`,
        'idempotency-key': `seed-${index}`,
      })
      expect(reply.status).toBe(200)
    }

    // Forget clears the field and the account; Look up finds it again by its credential.
    await page.getByRole('button', { name: 'Forget' }).click()
    expect(await page.getByLabel('Credential').inputValue()).toBe('')
    await until('the account to be forgotten', async () => (await balanceRegion(page).count()) === 0)
    await page.getByLabel('Credential').fill(cred)
    await page.getByRole('button', { name: 'Look up' }).click()
    await balanceShows(page, grouped(expectedTot))
    expect(expectedTot).toBe(1310n)
    await balanceRegion(page).getByText('62', { exact: true }).waitFor({ timeout: waitMs })

    // History: newest first, 25 a page, with the kind, signed amount, balance after, note and key.
    await rowCount(page, 25)
    await firstSeq(page, 62)
    const cells = await historyRows(page).first().locator('td').allTextContents()
    expect(cells[0]).toBe('62')
    expect(cells[2]).toBe('mod')
    expect(cells.slice(3)).toEqual(['-7', '1,310', 'usage 60', 'seed-60'])
    const time = historyRows(page).first().locator('time')
    expect(await time.getAttribute('title')).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/)

    // Paging: older to the first entry, then newer back to the top.
    await page.getByRole('button', { name: 'Older' }).click()
    await firstSeq(page, 37)
    await page.getByRole('button', { name: 'Older' }).click()
    await firstSeq(page, 12)
    await rowCount(page, 12)
    expect(await historyRows(page).last().locator('td').allTextContents()).toEqual(
      expect.arrayContaining(['1', 'mod', '+1,000', '1,000', 'opening balance']),
    )
    expect(await page.getByRole('button', { name: 'Older' }).isDisabled()).toBe(true)
    await page.getByRole('button', { name: 'Newer' }).click()
    await firstSeq(page, 37)
    await page.getByRole('button', { name: 'Newer' }).click()
    await firstSeq(page, 62)
    expect(await page.getByRole('button', { name: 'Newer' }).isDisabled()).toBe(true)

    // The chart: a canvas drawn from all 62 entries.
    const chart = page.getByRole('figure', { name: 'Balance over time' })
    await chart.getByText(/^62 entries, /).waitFor({ timeout: waitMs })
    expect(await chart.locator('canvas').count()).toBeGreaterThan(0)

    // The date filter: days after and before today hold nothing; today holds everything.
    await filterDays(page, await localDay(page, 1), '')
    await rowCount(page, 0)
    await page.getByText('No entries in this range.').first().waitFor({ timeout: waitMs })
    await filterDays(page, '', await localDay(page, -1))
    await rowCount(page, 0)
    const today = await localDay(page, 0)
    await filterDays(page, today, today)
    await rowCount(page, 25)
    await firstSeq(page, 62)
    const filtered = requests.filter((request) => request.url.includes('/past?') && request.url.includes('from='))
    expect(filtered.length).toBeGreaterThan(0)

    // CSV export of the range: a header and every entry, exact integers, in seq order.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()])
    expect(download.suggestedFilename()).toBe('accman-history.csv')
    const csv = readFileSync(await download.path(), 'utf8').split('\r\n')
    expect(csv[0]).toBe('seq,at,kind,by,tot,held,note,key')
    expect(csv[csv.length - 1]).toBe('')
    const rows = csv.slice(1, -1).map((line) => line.split(','))
    const history = await readHistory(cred)
    expect(rows).toHaveLength(62)
    expect(rows.map((row) => [Number(row[0]), row[2], row[3], row[4], row[5]])).toEqual(
      history.map((entry) => [entry.seq, 'mod', entry.by, entry.tot, '0']),
    )
    expect(rows[0]?.[6]).toBe('opening balance')
    expect(rows[61]?.slice(6)).toEqual(['usage 60', 'seed-60'])
    expect(rows[1]?.[7]).toMatch(/^[0-9a-f-]{36}$/)
    await page.getByRole('button', { name: 'Clear' }).click()

    // A debit beyond the balance: the confirmation warns, the server refuses with 402 and its
    // message appears next to the form; the balance is unchanged.
    await page.getByRole('button', { name: 'Debit', exact: true }).click()
    await page.getByLabel('Amount').fill('5000')
    await page.getByText('below zero, so the server will refuse it').waitFor({ timeout: waitMs })
    const refusal = page.waitForResponse((response) => response.url().includes('/mod?'))
    await page.getByRole('button', { name: 'Confirm' }).click()
    expect((await refusal).status()).toBe(402)
    await page.getByRole('alert').getByText('insufficient funds: the balance is 1310, the amount is -5000').waitFor({ timeout: waitMs })
    await balanceShows(page, '1,310')
    await page.getByRole('button', { name: 'Cancel' }).click()

    // A double click on Confirm applies once: one key per confirmation.
    await page.getByRole('button', { name: 'Credit', exact: true }).click()
    await page.getByLabel('Amount').fill('5')
    await page.getByRole('button', { name: 'Confirm' }).dblclick()
    await balanceShows(page, '1,315')
    expectedTot = 1315n
    const after = await readHistory(cred)
    expect(after).toHaveLength(63)
    expect(after[62]).toMatchObject({ seq: 63, by: '5', tot: '1315' })

    // Screenshots, desktop then phone width; at 390 px nothing overflows sideways.
    await rowCount(page, 25)
    await chart.getByText(/^63 entries, /).waitFor({ timeout: waitMs })
    await page.evaluate(() => window.scrollTo(0, 0))
    await page.screenshot({ path: `${artifacts}console-desktop.png` })
    await page.screenshot({ path: `${artifacts}console-desktop-full.png`, fullPage: true })
    await page.setViewportSize({ width: 390, height: 844 })
    await until('the page to fit 390 px', async () => (await page.evaluate(() => document.documentElement.scrollWidth)) <= 390)
    await page.evaluate(() => window.scrollTo(0, 0))
    await page.screenshot({ path: `${artifacts}console-phone.png` })
    await page.screenshot({ path: `${artifacts}console-phone-full.png`, fullPage: true })
    await page.getByRole('navigation', { name: 'Paging' }).scrollIntoViewIfNeeded()
    await page.screenshot({ path: `${artifacts}console-phone-history.png` })
    await page.setViewportSize({ width: 1280, height: 900 })

    // The largest balance is shown exactly, with digit grouping.
    await newAccount(page, amountMax.toString(), 'largest')
    await balanceShows(page, '170,141,183,460,469,231,731,687,303,715,884,105,727')
    await balanceRegion(page).screenshot({ path: `${artifacts}console-largest-balance.png` })
    await page.getByRole('button', { name: 'Done' }).click()

    // The credential never reached the address bar, the history or a Referer.
    expect(page.url()).toBe(`${base}/console`)
    const cdp = await context.newCDPSession(page)
    const navigation = (await cdp.send('Page.getNavigationHistory')) as { entries: Array<{ url: string }> }
    // A new tab starts at about:blank; the console is the only page visited after it.
    expect(navigation.entries.map((entry) => entry.url).filter((url) => url !== 'about:blank')).toEqual([`${base}/console`])
    await settled()
    expect(requests.length).toBeGreaterThan(0)
    for (const request of requests) expect(request.headers.referer).toBeUndefined()
    expect(problems).toEqual([])
    await context.close()
  }, 180_000)

  test('a read token sees the account but no actions, and the server refuses them anyway', async () => {
    expect(cred).not.toBe('')
    const { context, page, problems } = await openConsole(1280)
    await signIn(page, readToken)
    await page.getByText('Read only').waitFor({ timeout: waitMs })
    await page.getByLabel('Credential').fill(cred)
    await page.getByLabel('Credential').press('Enter')
    await balanceShows(page, grouped(expectedTot))
    await rowCount(page, 25)
    for (const name of ['Credit', 'Debit', 'New account', 'Confirm']) {
      expect(await page.getByRole('button', { name, exact: true }).count(), name).toBe(0)
    }
    const status = await page.evaluate(
      async ({ token, cred }) => {
        const reply = await fetch(`/mod?${new URLSearchParams({ cred, by: '1' }).toString()}`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${token}` },
        })
        return `${reply.status} ${await reply.text()}`
      },
      { token: readToken, cred },
    )
    expect(status).toMatch(/^403 .*ACCMAN_FORBIDDEN/)
    expect(await readHistory(cred)).toHaveLength(63)

    // The token lives in sessionStorage only: it survives a reload, never a cookie or
    // localStorage, and Sign out removes it.
    await page.reload()
    await page.getByText('Read only').waitFor({ timeout: waitMs })
    expect(await context.cookies()).toEqual([])
    expect(await page.evaluate(() => localStorage.length)).toBe(0)
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByLabel('Token').waitFor({ timeout: waitMs })
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0)
    expect(problems).toEqual([])
    await context.close()
  })

  test('keyboard only: sign in, look up and credit with Tab and Enter', async () => {
    const { context, page, problems } = await openConsole(390)
    await until('the token field to have focus', async () => page.evaluate(() => document.activeElement?.id === 'token'))
    await page.keyboard.type(writeToken)
    await page.keyboard.press('Enter')
    await page.getByText('Write access').waitFor({ timeout: waitMs })
    await until('the credential field to have focus', async () => page.evaluate(() => document.activeElement?.id === 'cred'))
    await page.keyboard.type(cred)
    await page.keyboard.press('Enter')
    await balanceShows(page, grouped(expectedTot))
    let presses = 0
    while ((await page.evaluate(() => document.activeElement?.textContent)) !== 'Credit') {
      expect(presses++, 'Tab presses to reach Credit').toBeLessThan(30)
      await page.keyboard.press('Tab')
    }
    await page.keyboard.press('Enter')
    await until('the amount field to have focus', async () => page.evaluate(() => document.activeElement?.closest('form')?.textContent?.includes('Amount') === true))
    await page.keyboard.type('7')
    await page.keyboard.press('Enter')
    expectedTot += 7n
    await balanceShows(page, grouped(expectedTot))
    expect(problems).toEqual([])
    await context.close()
  })

  test("no credential or token ever appears in the server's log at trace level", async () => {
    expect(credentials.length).toBeGreaterThanOrEqual(2)
    expect(await server.kill('SIGTERM')).toBe(0)
    const log = [...server.lines, ...server.stderr].join('\n')
    expect(log).toContain('"route":"/past"')
    expect(log).toContain('"route":"/whoami"')
    for (const secret of [...credentials, writeToken, readToken]) expect(log).not.toContain(secret)
    // Nor any fragment long enough to matter (a credential cut or re-encoded).
    for (const secret of credentials) expect(log).not.toContain(secret.slice(0, 16))
  })
})
