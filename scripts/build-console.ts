// Builds the operator console into dist/console: the page, one script bundle (preact, uPlot and
// the console's own code) and one stylesheet. The server reads these files at start.
// `npm run build` runs it; so does the test setup, so the browser tests see current sources.
import { copyFile, mkdir, rm } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'

const source = new URL('../console/', import.meta.url)
export const consoleOutput = new URL('../dist/console/', import.meta.url)

export async function buildConsole(): Promise<void> {
  await rm(consoleOutput, { recursive: true, force: true })
  await mkdir(consoleOutput, { recursive: true })
  await build({
    entryPoints: [fileURLToPath(new URL('main.tsx', source))],
    outfile: fileURLToPath(new URL('app.js', consoleOutput)),
    bundle: true,
    format: 'esm',
    // Browsers of the last few years; bigint and Intl formatting of bigint need no polyfill there.
    target: ['chrome111', 'firefox113', 'safari16.4'],
    minify: true,
    jsx: 'automatic',
    jsxImportSource: 'preact',
    legalComments: 'eof',
    logLevel: 'warning',
  })
  for (const file of ['index.html', 'icon.svg']) await copyFile(new URL(file, source), new URL(file, consoleOutput))
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await buildConsole()
