// Once before all test files: build the console, so the tests that serve it see current sources.
import { buildConsole } from '../scripts/build-console.js'

export default async function setup(): Promise<void> {
  await buildConsole()
}
