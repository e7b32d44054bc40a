// The HTTP contract tests of test/http.test.ts on PostgreSQL: every app they build gets a new
// database on the test run's server.
import { testEngine } from './support.js'

testEngine.name = 'postgres'
await import('./http.test.js')
