// The /docs page in a real browser: Debian's Chromium, driven headless by playwright-core (no
// browser download). `.ci/run` installs Chromium; where it cannot be had, the test says so and skips.
import { existsSync } from 'node:fs'
import type { FastifyInstance } from 'fastify'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, test } from 'vitest'
import { listenOnLoopback, testApp } from './support.js'

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const haveChromium = existsSync(chromiumPath)
if (!haveChromium) console.warn(`docs browser test skipped: no Chromium at ${chromiumPath} (apt-get install chromium)`)

let app: FastifyInstance
let browser: Browser | undefined
let base: string

beforeAll(async () => {
  if (!haveChromium) return
  app = await testApp()
  base = await listenOnLoopback(app)
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox'] })
})

afterAll(async () => {
  await browser?.close()
  await app?.close()
})

test.skipIf(!haveChromium)('/docs lists /tot, /mod and /past, with no script errors', async () => {
  if (browser === undefined) throw new Error('no browser')
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  const response = await page.goto(`${base}/docs`, { waitUntil: 'load', timeout: 30_000 })
  expect(response?.status()).toBe(200)
  // Swagger UI draws one block per operation once it has fetched /openapi.json.
  const paths = page.locator('.opblock-summary-path')
  await paths.first().waitFor({ timeout: 30_000 })
  const shown = (await paths.allTextContents()).map((text) => text.replace(/\u200b/g, '').trim())
  expect(shown).toEqual(expect.arrayContaining(['/tot', '/mod', '/past', '/acct', '/rotate', '/healthz', '/readyz', '/metrics']))
  const patched = (await page.locator('.opblock-patch .opblock-summary-path').allTextContents()).map((text) => text.replace(/\u200b/g, '').trim())
  expect(patched.sort()).toEqual(['/alert', '/freeze', '/hold', '/mod', '/move', '/ref', '/rotate', '/settle', '/unfreeze', '/void'])
  expect(await page.title()).toContain('Swagger UI')
  expect(errors).toEqual([])
  await page.close()
})
