// The tests through a real listening server of test/e2e.test.ts on PostgreSQL: every app they
// build gets a new database on the test run's server.
import { testEngine } from './support.js'

testEngine.name = 'postgres'
await import('./e2e.test.js')
